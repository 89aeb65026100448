package model

import "time"

// DeliveryStats is the GraphQL DeliveryStats: statistics over a window.
type DeliveryStats struct {
	From   time.Time             `json:"from"`
	To     time.Time             `json:"to"`
	Bucket time.Duration         `json:"bucket"`
	Total  *DeliveryStatsPoint   `json:"total"`
	Series []*DeliveryStatsPoint `json:"series"`
	// Columns is the series as one list per measure.
	Columns *DeliveryStatsColumns `json:"columns"`
}
