package endpoints

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/heraldhq/herald/audit"
	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/ent/endpoint"
	"github.com/heraldhq/herald/ent/predicate"
	"github.com/heraldhq/herald/ent/schema"
	"github.com/heraldhq/herald/secret"
	"github.com/heraldhq/herald/tenant"
)

// KeyUse is how many endpoints have their secrets sealed under one
// encryption key.
type KeyUse struct {
	// ID is the key's id.
	ID string
	// Configured reports that the service's keyring holds the key.
	Configured bool
	// Endpoints counts the endpoints (deleted ones whose history is kept
	// included) whose secrets are sealed under it.
	Endpoints int
}

// allEndpoints is the context of Herald's own reads and writes of every
// app's endpoints, deleted ones included.
func allEndpoints(ctx context.Context) context.Context {
	return schema.IncludeDeleted(tenant.System(ctx))
}

// KeyUses returns the keys of the service's keyring and every key the
// database's endpoints are sealed under, with how many endpoints each
// holds (the primary first), and how many endpoints still hold their
// secrets in the clear.
func (s *Service) KeyUses(ctx context.Context) (uses []KeyUse, plaintext int, err error) {
	var rows []struct {
		SecretsKey string `json:"secrets_key"`
		Count      int    `json:"count"`
	}
	err = s.Client.Endpoint.Query().GroupBy(endpoint.FieldSecretsKey).Aggregate(ent.Count()).Scan(allEndpoints(ctx), &rows)
	if err != nil {
		return nil, 0, fmt.Errorf("count endpoints by encryption key: %w", err)
	}
	counts := map[string]int{}
	for _, r := range rows {
		if r.SecretsKey == "" {
			plaintext = r.Count
			continue
		}
		counts[r.SecretsKey] = r.Count
	}
	for _, id := range s.Secrets.IDs() {
		uses = append(uses, KeyUse{ID: id, Configured: true, Endpoints: counts[id]})
		delete(counts, id)
	}
	var missing []KeyUse
	for id, n := range counts {
		missing = append(missing, KeyUse{ID: id, Endpoints: n})
	}
	sort.Slice(missing, func(i, j int) bool { return missing[i].ID < missing[j].ID })
	return append(uses, missing...), plaintext, nil
}

// CheckKeys returns an error unless the service's keyring opens the
// secrets of every endpoint: it holds every key they are sealed under
// (else a *secret.MissingKeyError naming the key), and each of those keys
// opens an endpoint sealed under it (else a *secret.WrongKeyError: a key
// of that id, but not the one they were sealed with). Herald refuses to
// start on either.
func (s *Service) CheckKeys(ctx context.Context) error {
	uses, _, err := s.KeyUses(ctx)
	if err != nil {
		return err
	}
	for _, u := range uses {
		if u.Endpoints == 0 {
			continue
		}
		if !u.Configured {
			return &secret.MissingKeyError{ID: u.ID, Have: s.Secrets.IDs()}
		}
		ep, err := s.Client.Endpoint.Query().Where(endpoint.SecretsKey(u.ID)).Order(ent.Asc(endpoint.FieldID)).First(allEndpoints(ctx))
		if err != nil {
			return fmt.Errorf("read an endpoint sealed under key %s: %w", u.ID, err)
		}
		if _, err := s.Open(ep); err != nil {
			return err
		}
	}
	return nil
}

// Resealing bounds.
const (
	DefaultResealBatch = 100
	MaxResealBatch     = 1000
)

// Reseal seals again, under the keyring's primary key, the secrets of
// endpoints sealed under other keys or stored in the clear, in
// transactions of at most batch endpoints (at most maxBatches of them;
// 0: until none is left), while Herald serves: each row is written only
// if it did not change since it was read (a row changed meanwhile was
// sealed under the primary key by that change). It returns how many
// endpoints it sealed again.
func (s *Service) Reseal(ctx context.Context, batch, maxBatches int) (int, error) {
	primary := s.Secrets.Primary()
	return s.reseal(ctx, endpoint.SecretsKeyNEQ(primary), batch, maxBatches)
}

// SealPlaintext is the data migration of encryption at rest: it seals,
// under the primary key, the secrets of the endpoints an earlier Herald
// stored in the clear (secrets_key ""), in batches, and returns how many.
// Herald runs it at start when such endpoints exist.
func (s *Service) SealPlaintext(ctx context.Context) (int, error) {
	return s.reseal(ctx, endpoint.SecretsKey(""), DefaultResealBatch, 0)
}

func (s *Service) reseal(ctx context.Context, which predicate.Endpoint, batch, maxBatches int) (int, error) {
	if batch <= 0 {
		batch = DefaultResealBatch
	}
	batch = min(batch, MaxResealBatch)
	ctx = allEndpoints(ctx)
	total, after := 0, ""
	for n := 0; maxBatches <= 0 || n < maxBatches; n++ {
		done, last, count, err := s.resealBatch(ctx, which, after, batch)
		if err != nil {
			return total, err
		}
		total += count
		if done {
			break
		}
		after = last
	}
	return total, nil
}

// resealBatch reseals the next batch of endpoints after the ID after.
func (s *Service) resealBatch(ctx context.Context, which predicate.Endpoint, after string, batch int) (done bool, last string, count int, err error) {
	err = db.WithTx(ctx, s.Client, func(tx *ent.Client) error {
		q := tx.Endpoint.Query().Where(which).Order(ent.Asc(endpoint.FieldID)).Limit(batch)
		if after != "" {
			q.Where(endpoint.IDGT(after))
		}
		eps, err := q.All(ctx)
		if err != nil {
			return fmt.Errorf("read endpoints to re-encrypt: %w", err)
		}
		done = len(eps) < batch
		for _, ep := range eps {
			last = ep.ID
			plain, err := s.Open(ep)
			if err != nil {
				return err
			}
			sealed, err := s.Secrets.SealEndpoint(plain)
			if err != nil {
				return err
			}
			u := tx.Endpoint.Update().
				Where(endpoint.ID(ep.ID), endpoint.SecretsKey(ep.SecretsKey), endpoint.UpdatedAt(ep.UpdatedAt)).
				SetUpdatedAt(ep.UpdatedAt). // not a change of the endpoint
				SetSecret(sealed.Signing).SetAuth(sealed.Auth).SetHeaders(sealed.Headers).
				SetSecretsKey(s.Secrets.Primary())
			if sealed.PreviousSigning != "" {
				u.SetPreviousSecret(sealed.PreviousSigning)
			}
			if sealed.Destination != nil {
				u.SetDestination(sealed.Destination)
			}
			if sealed.TLS != nil {
				u.SetTLS(sealed.TLS)
			}
			n, err := u.Save(ctx)
			if err != nil {
				return fmt.Errorf("re-encrypt the secrets of endpoint %s: %w", ep.ID, err)
			}
			count += n
		}
		if count > 0 {
			return audit.Record(ctx, tx, audit.Change{TargetType: "EncryptionKey", TargetID: s.Secrets.Primary(),
				Fields: map[string]any{"primary": s.Secrets.Primary()}}, time.Now())
		}
		return nil
	})
	return done, last, count, err
}

// IsKeyError reports whether err is a missing or wrong encryption key.
func IsKeyError(err error) bool {
	var missing *secret.MissingKeyError
	var wrong *secret.WrongKeyError
	return errors.As(err, &missing) || errors.As(err, &wrong)
}
