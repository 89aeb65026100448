package client

import (
	"context"
	"encoding/json"
)

// EndpointQuery selects endpoints, oldest first.
type EndpointQuery struct {
	// First is the page size (default 20, at most 100).
	First int
	// After is the cursor to continue from (Page.EndCursor).
	After string
	// Active, when not nil, keeps only active (true) or inactive endpoints.
	Active *bool
}

// Endpoints lists the app's endpoints.
func (c *Client) Endpoints(ctx context.Context, q EndpointQuery) (*Page[Endpoint], error) {
	r, err := listEndpoints(ctx, c.gql, pageSize(q.First), optString(q.After), q.Active)
	if err != nil {
		return nil, err
	}
	p := &Page[Endpoint]{TotalCount: r.Endpoints.TotalCount, HasNextPage: r.Endpoints.PageInfo.HasNextPage, EndCursor: endCursor(r.Endpoints.PageInfo)}
	for _, e := range r.Endpoints.Edges {
		if e != nil && e.Node != nil {
			p.Items = append(p.Items, *e.Node)
		}
	}
	return p, nil
}

// Endpoint returns an endpoint by ID.
func (c *Client) Endpoint(ctx context.Context, id string) (*Endpoint, error) {
	r, err := getEndpoint(ctx, c.gql, id)
	if err != nil {
		return nil, err
	}
	if len(r.Endpoints.Edges) == 0 || r.Endpoints.Edges[0].Node == nil {
		return nil, notFound("endpoint", id)
	}
	return r.Endpoints.Edges[0].Node, nil
}

// CreateEndpoint creates an endpoint and returns it with its signing secret
// (whsec_…), which the API shows only this once.
func (c *Client) CreateEndpoint(ctx context.Context, in CreateEndpointInput) (ep *Endpoint, secret string, err error) {
	r, err := createEndpoint(ctx, c.gql, &in)
	if err != nil {
		return nil, "", err
	}
	return &r.CreateEndpoint.Endpoint, r.CreateEndpoint.Secret, nil
}

// UpdateEndpoint changes an endpoint: nil fields of in stay as they are.
// ClearEndpointFilter and ClearEndpointRateLimit remove those settings.
func (c *Client) UpdateEndpoint(ctx context.Context, id string, in UpdateEndpointInput) (*Endpoint, error) {
	r, err := updateEndpoint(ctx, c.gql, id, &in)
	if err != nil {
		return nil, err
	}
	return &r.UpdateEndpoint, nil
}

// ClearEndpointFilter removes an endpoint's payload filter.
func (c *Client) ClearEndpointFilter(ctx context.Context, id string) (*Endpoint, error) {
	r, err := clearEndpointFilter(ctx, c.gql, id)
	if err != nil {
		return nil, err
	}
	return &r.UpdateEndpoint, nil
}

// ClearEndpointRateLimit removes an endpoint's rate limit.
func (c *Client) ClearEndpointRateLimit(ctx context.Context, id string) (*Endpoint, error) {
	r, err := clearEndpointRateLimit(ctx, c.gql, id)
	if err != nil {
		return nil, err
	}
	return &r.UpdateEndpoint, nil
}

// EnableEndpoint makes an endpoint active again; a disabled endpoint's
// consecutive failures are reset.
func (c *Client) EnableEndpoint(ctx context.Context, id string) (*Endpoint, error) {
	on := true
	return c.UpdateEndpoint(ctx, id, UpdateEndpointInput{IsActive: &on})
}

// DisableEndpoint stops deliveries to an endpoint; its pending deliveries
// fail.
func (c *Client) DisableEndpoint(ctx context.Context, id string) (*Endpoint, error) {
	off := false
	return c.UpdateEndpoint(ctx, id, UpdateEndpointInput{IsActive: &off})
}

// DeleteEndpoint deletes an endpoint. Its deliveries stay in the logs;
// pending ones are cancelled.
func (c *Client) DeleteEndpoint(ctx context.Context, id string) error {
	_, err := deleteEndpoint(ctx, c.gql, id)
	return err
}

// RotateEndpointSecret replaces an endpoint's signing secret and returns the
// new one. Deliveries are also signed with the previous secret for overlap
// (a Go duration such as "24h"; empty: the server's default of 24h; "0s":
// not at all).
func (c *Client) RotateEndpointSecret(ctx context.Context, id, overlap string) (ep *Endpoint, secret string, err error) {
	r, err := rotateEndpointSecret(ctx, c.gql, id, optString(overlap), nil)
	if err != nil {
		return nil, "", err
	}
	return &r.RotateEndpointSecret.Endpoint, r.RotateEndpointSecret.Secret, nil
}

// TestResult is the outcome of TestEndpoint.
type TestResult struct {
	// Delivered says whether the endpoint answered 2xx.
	Delivered    bool
	StatusCode   *int
	ResponseBody *string
	DurationMs   int
	Error        *string
	// Attempt is the recorded attempt (trigger TEST); nil while the test
	// waits for the endpoint's pace (rate limit, pause, ordering).
	Attempt *Attempt
	// DeliveryID is the test's delivery, to follow when Attempt is nil.
	DeliveryID string
}

// TestEndpoint sends a test event to an endpoint, even an inactive one,
// through its pace, and reports the outcome (see TestResult). eventType defaults to "test.ping"; a nil payload
// sends the type's example.
func (c *Client) TestEndpoint(ctx context.Context, id, eventType string, payload json.RawMessage) (*TestResult, error) {
	in := TestEndpointInput{EventType: optString(eventType)}
	if len(payload) > 0 {
		in.Payload = &payload
	}
	r, err := testEndpoint(ctx, c.gql, id, in)
	if err != nil {
		return nil, err
	}
	t := r.TestEndpoint
	return &TestResult{Delivered: t.Delivered, StatusCode: t.StatusCode, ResponseBody: t.ResponseBody,
		DurationMs: t.DurationMs, Error: t.Error, Attempt: t.Attempt, DeliveryID: t.Delivery.Id}, nil
}
