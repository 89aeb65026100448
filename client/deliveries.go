package client

import (
	"context"
	"time"
)

// DeliveryQuery selects deliveries, newest first. Zero fields do not
// filter.
type DeliveryQuery struct {
	// First is the page size (default 20, at most 100).
	First int
	// After is the cursor to continue from (Page.EndCursor).
	After      string
	EndpointID string
	EventID    string
	EventType  string
	Status     DeliveryStatus
	// Since and Until bound the deliveries' creation time (Since inclusive).
	Since, Until time.Time
}

// Deliveries lists deliveries, newest first.
func (c *Client) Deliveries(ctx context.Context, q DeliveryQuery) (*Page[Delivery], error) {
	var status *DeliveryStatus
	if q.Status != "" {
		status = &q.Status
	}
	r, err := listDeliveries(ctx, c.gql, pageSize(q.First), optString(q.After), optString(q.EndpointID),
		optString(q.EventID), optString(q.EventType), status, optTime(q.Since), optTime(q.Until))
	if err != nil {
		return nil, err
	}
	p := &Page[Delivery]{TotalCount: r.Deliveries.TotalCount, HasNextPage: r.Deliveries.PageInfo.HasNextPage, EndCursor: endCursor(r.Deliveries.PageInfo)}
	for _, e := range r.Deliveries.Edges {
		if e != nil && e.Node != nil {
			p.Items = append(p.Items, *e.Node)
		}
	}
	return p, nil
}

// DeliveryDetail is a delivery with its attempts, oldest first.
type DeliveryDetail struct {
	Delivery
	Attempts []Attempt
}

// maxAttempts is the most attempts a delivery can have (a retry policy's
// maxAttempts is at most 50) plus manual retries that a detail shows.
const maxAttempts = 100

// Delivery returns a delivery by ID with its attempts.
func (c *Client) Delivery(ctx context.Context, id string) (*DeliveryDetail, error) {
	r, err := getDelivery(ctx, c.gql, id, maxAttempts)
	if err != nil {
		return nil, err
	}
	if len(r.Deliveries.Edges) == 0 || r.Deliveries.Edges[0].Node == nil {
		return nil, notFound("delivery", id)
	}
	n := r.Deliveries.Edges[0].Node
	d := &DeliveryDetail{Delivery: n.Delivery}
	for _, e := range n.Attempts.Edges {
		if e != nil && e.Node != nil {
			d.Attempts = append(d.Attempts, *e.Node)
		}
	}
	return d, nil
}

// RetryDelivery queues another attempt of a delivery now.
func (c *Client) RetryDelivery(ctx context.Context, id string) (*Delivery, error) {
	r, err := retryDelivery(ctx, c.gql, id)
	if err != nil {
		return nil, err
	}
	return &r.RetryDelivery, nil
}

// ReplayDeliveries queues again every delivery of an endpoint with the
// status (FAILED when empty) created since a time, and returns how many.
func (c *Client) ReplayDeliveries(ctx context.Context, endpointID string, since time.Time, status DeliveryStatus) (int, error) {
	var st *DeliveryStatus
	if status != "" {
		st = &status
	}
	r, err := replayDeliveries(ctx, c.gql, endpointID, ReplayDeliveriesInput{Since: since, Status: st})
	if err != nil {
		return 0, err
	}
	return r.ReplayDeliveries.Count, nil
}

// RetryDeliveries queues another attempt of each of up to 100 deliveries
// now, as RetryDelivery does for one. It returns those it queued, in the
// order they were named, and why it did not queue the others (RetryRefusal
// carries the code RetryDelivery would have answered).
func (c *Client) RetryDeliveries(ctx context.Context, ids []string) (retried []Delivery, refused []RetryRefusal, err error) {
	r, err := retryDeliveries(ctx, c.gql, ids)
	if err != nil {
		return nil, nil, err
	}
	return r.RetryDeliveries.Deliveries, r.RetryDeliveries.NotRetried, nil
}
