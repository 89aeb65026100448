package client

import (
	"context"
)

// KeyUse is one encryption key of endpoints' secrets and how many
// endpoints are sealed under it.
type KeyUse struct {
	ID string
	// Configured reports that the server holds the key.
	Configured bool
	Endpoints  int
}

// EncryptionKeys reports the server's encryption keys: the primary one,
// every key endpoints are sealed under, and how many endpoints still hold
// their secrets in the clear (admin keys).
func (c *Client) EncryptionKeys(ctx context.Context) (primary string, keys []KeyUse, plaintext int, err error) {
	r, err := encryptionKeys(ctx, c.gql)
	if err != nil {
		return "", nil, 0, err
	}
	k := r.EncryptionKeys
	for _, u := range k.Keys {
		keys = append(keys, KeyUse{ID: u.ID, Configured: u.Configured, Endpoints: u.Endpoints})
	}
	return k.Primary, keys, k.Plaintext, nil
}

// Rotation is what one RotateEncryptionKeys call did.
type Rotation struct {
	Primary  string
	Resealed int
	// Remaining are the other keys endpoints are still sealed under.
	Remaining []KeyUse
	// Done reports that nothing is left under other keys.
	Done bool
}

// RotateEncryptionKeys re-encrypts up to maxBatches batches of batchSize
// endpoints (0: the server's defaults) with the primary key (admin keys).
func (c *Client) RotateEncryptionKeys(ctx context.Context, batchSize, maxBatches int) (*Rotation, error) {
	var bs, mb *int
	if batchSize > 0 {
		bs = &batchSize
	}
	if maxBatches > 0 {
		mb = &maxBatches
	}
	r, err := rotateEncryptionKeys(ctx, c.gql, bs, mb)
	if err != nil {
		return nil, err
	}
	k := r.RotateEncryptionKeys
	out := &Rotation{Primary: k.Primary, Resealed: k.Resealed, Done: k.Done}
	for _, u := range k.Remaining {
		out.Remaining = append(out.Remaining, KeyUse{ID: u.ID, Configured: u.Configured, Endpoints: u.Endpoints})
	}
	return out, nil
}

// AuditLog reads a page of the audit log, newest first, narrowed by where
// (nil: everything the key may read).
func (c *Client) AuditLog(ctx context.Context, first int, after string, where *AuditLogWhere) (*Page[AuditRecord], error) {
	r, err := auditLog(ctx, c.gql, first, optString(after), where)
	if err != nil {
		return nil, err
	}
	p := &Page[AuditRecord]{HasNextPage: r.AuditLog.PageInfo.HasNextPage, EndCursor: endCursor(r.AuditLog.PageInfo.PageInfo)}
	for _, e := range r.AuditLog.Edges {
		if e.Node != nil {
			p.Items = append(p.Items, *e.Node)
		}
	}
	return p, nil
}
