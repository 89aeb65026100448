package dispatch

import (
	"context"
	"fmt"
	"time"

	"github.com/heraldhq/herald/catalog"
	"github.com/heraldhq/herald/ent/endpoint"
	"github.com/heraldhq/herald/tenant"
	"github.com/heraldhq/herald/webhook"
)

// CertificatePayload is the payload of a webhook.certificate_expiring
// event: an endpoint's mutual TLS client certificate expires within
// webhook.CertificateWarning (or has expired), and deliveries will fail
// once it has unless it is renewed.
type CertificatePayload struct {
	EndpointID string `json:"endpointId"`
	// URL is the endpoint's URL without query string or credentials.
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expiresAt"`
	// DaysLeft is how many whole days are left (0 or less: expired).
	DaysLeft int `json:"daysLeft"`
}

// Certificate warnings: how often the engine looks, how often one
// endpoint is warned again while its certificate is not renewed, and the
// most endpoints warned per look.
const (
	certificateCheckEvery = time.Hour
	certificateWarnAgain  = 24 * time.Hour
	certificateBatch      = 100
)

// WarnExpiringCertificates publishes webhook.certificate_expiring for each
// endpoint whose client certificate expires within
// webhook.CertificateWarning and that was not warned in the last day, and
// returns how many it warned. Each warning is claimed by a conditional
// update first, so that replicas checking at once warn only once.
func (e *Engine) WarnExpiringCertificates(ctx context.Context, now time.Time) (int, error) {
	ctx = tenant.System(ctx)
	now = now.UTC()
	eps, err := e.cfg.Client.Endpoint.Query().
		Where(endpoint.CertificateExpiresAtLT(now.Add(webhook.CertificateWarning)),
			endpoint.Or(endpoint.CertificateWarnedAtIsNil(), endpoint.CertificateWarnedAtLT(now.Add(-certificateWarnAgain)))).
		Order(endpoint.ByCertificateExpiresAt()).
		Limit(certificateBatch).
		All(ctx)
	if err != nil {
		return 0, fmt.Errorf("find expiring client certificates: %w", err)
	}
	warned := 0
	for _, ep := range eps {
		n, err := e.cfg.Client.Endpoint.Update().
			Where(endpoint.ID(ep.ID), endpoint.Or(endpoint.CertificateWarnedAtIsNil(), endpoint.CertificateWarnedAtLT(now.Add(-certificateWarnAgain)))).
			SetCertificateWarnedAt(now).
			SetUpdatedAt(ep.UpdatedAt). // not a change of the endpoint
			Save(ctx)
		if err != nil {
			return warned, fmt.Errorf("record the certificate warning of endpoint %s: %w", ep.ID, err)
		}
		if n == 0 {
			continue // another replica warned
		}
		exp := ep.CertificateExpiresAt.UTC()
		e.publishMeta(ep.AppID, catalog.TypeCertificateExpiring, CertificatePayload{
			EndpointID: ep.ID, URL: redactURL(ep.URL), ExpiresAt: exp, DaysLeft: int(exp.Sub(now) / (24 * time.Hour)),
		}, ep.ID)
		warned++
	}
	return warned, nil
}

// watchCertificates warns about expiring client certificates at start and
// every certificateCheckEvery until stop is closed.
func (e *Engine) watchCertificates(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(certificateCheckEvery)
	defer t.Stop()
	for {
		if _, err := e.WarnExpiringCertificates(context.Background(), e.cfg.Now()); err != nil {
			e.log.Warn("warn about expiring client certificates", "err", err)
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}
