package dispatch

import "time"

// Observer is told about changes after they are committed, for live feeds.
// Its methods are called from the engine's goroutines and must not block.
type Observer interface {
	// DeliveryChanged reports one state change of a delivery.
	DeliveryChanged(DeliveryChange)
	// EndpointChanged reports that an endpoint's health, counters or
	// activity changed.
	EndpointChanged(EndpointChange)
	// EventPublished reports a newly stored event.
	EventPublished(EventPublished)
}

// ChangeKind says what happened to a delivery.
type ChangeKind string

// Kinds of delivery changes.
const (
	// Created: the delivery was created by a publish (status PENDING).
	Created ChangeKind = "CREATED"
	// AttemptStarted: a worker started an attempt (status SENDING).
	AttemptStarted ChangeKind = "ATTEMPT_STARTED"
	// AttemptFinished: an attempt ended; Status is the delivery's new state
	// (SUCCEEDED, RETRYING with NextAttemptAt, or FAILED).
	AttemptFinished ChangeKind = "ATTEMPT_FINISHED"
	// Requeued: retryDelivery or replayDeliveries queued it again.
	Requeued ChangeKind = "REQUEUED"
	// Cancelled: the endpoint was disabled or deleted, so the delivery
	// ended FAILED without another attempt.
	Cancelled ChangeKind = "CANCELLED"
)

// DeliveryChange is one state change of a delivery.
type DeliveryChange struct {
	Kind       ChangeKind
	AppID      string
	DeliveryID string
	EventID    string
	EndpointID string
	EventType  string
	// Status is the delivery's status after the change.
	Status string
	// Attempt is the attempt number the change is about (0 if none).
	Attempt int
	// AttemptID identifies the recorded attempt (AttemptFinished only).
	AttemptID string
	// ResponseStatus is the HTTP status of a finished attempt (0: none).
	ResponseStatus int
	// Duration of a finished attempt.
	Duration time.Duration
	// Error says why an attempt failed.
	Error string
	// NextAttemptAt is when a RETRYING delivery is tried again.
	NextAttemptAt *time.Time
	// At is when the change happened.
	At time.Time
}

// EndpointChange reports that an endpoint changed.
type EndpointChange struct {
	AppID      string
	EndpointID string
	// Reason is a short description: "attempts recorded", "disabled",
	// "updated", ...
	Reason string
	At     time.Time
}

// EventPublished reports a stored event and its fan-out.
type EventPublished struct {
	AppID     string
	EventID   string
	EventType string
	// Deliveries is how many deliveries the event fanned out to.
	Deliveries int
	At         time.Time
}

type nopObserver struct{}

func (nopObserver) DeliveryChanged(DeliveryChange) {}
func (nopObserver) EndpointChanged(EndpointChange) {}
func (nopObserver) EventPublished(EventPublished)  {}
