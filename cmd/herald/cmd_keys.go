package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/client"
)

func (c *cli) keysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "See and rotate the keys that encrypt endpoints' secrets (admin keys)",
		Long: `Endpoints' secrets (signing secrets, credentials, secret headers, TLS keys)
are encrypted at rest with the server's encryption keys
(HERALD_ENCRYPTION_KEYS or --encryption-key-file): the first encrypts, every
key decrypts. To rotate, put a new key first on every replica and restart
them, run "herald keys rotate", then remove the old key once it reports
nothing left under it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the encryption keys and how many endpoints each holds",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.with(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
				primary, keys, plain, err := cl.EncryptionKeys(ctx)
				if err != nil {
					return err
				}
				if c.json {
					return printJSON(c.stdout, map[string]any{"primary": primary, "keys": keys, "plaintext": plain})
				}
				t := newTable(c.stdout, "KEY", "PRIMARY", "CONFIGURED", "ENDPOINTS")
				for _, k := range keys {
					t.row(k.ID, k.ID == primary, k.Configured, k.Endpoints)
				}
				if plain > 0 {
					t.row("(in the clear)", false, true, plain)
				}
				return t.flush()
			})
		},
	}
	var batch, batches int
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Re-encrypt every endpoint's secrets with the primary key",
		Long: `Re-encrypt every endpoint's secrets with the server's primary key (the first
configured), in transactions of --batch endpoints while Herald serves, and
report what is left under other keys. Every replica must hold the primary
key before you run it.`,
		Example: `  HERALD_ENCRYPTION_KEYS="k2:…,k1:…" herald serve …   # the new key first, on every replica
  herald keys rotate
  herald keys status                                  # then drop k1 once it holds nothing`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if batch < 1 || batch > 1000 {
				return usageErrorf("--batch must be between 1 and 1000, got %d", batch)
			}
			return c.with(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
				total := 0
				for {
					r, err := cl.RotateEncryptionKeys(ctx, batch, batches)
					if err != nil {
						return err
					}
					total += r.Resealed
					if !c.json && r.Resealed > 0 {
						fmt.Fprintf(c.stderr, "re-encrypted %d endpoints with key %s\n", total, r.Primary)
					}
					if r.Done || r.Resealed == 0 {
						if c.json {
							return printJSON(c.stdout, map[string]any{"primary": r.Primary, "resealed": total, "remaining": r.Remaining, "done": r.Done})
						}
						if len(r.Remaining) == 0 {
							fmt.Fprintf(c.stdout, "Every endpoint's secrets are encrypted with key %s (%d re-encrypted now): older keys may be removed.\n", r.Primary, total)
							return nil
						}
						for _, k := range r.Remaining {
							fmt.Fprintf(c.stdout, "%d endpoints are still encrypted with key %s (configured here: %v)\n", k.Endpoints, k.ID, k.Configured)
						}
						return fmt.Errorf("some endpoints could not be re-encrypted: every replica needs key %s first, and the keys listed above", r.Primary)
					}
				}
			})
		},
	}
	rotate.Flags().IntVar(&batch, "batch", 100, "endpoints re-encrypted per transaction (at most 1000)")
	rotate.Flags().IntVar(&batches, "batches-per-call", 100, "batches per API call")
	cmd.AddCommand(status, rotate)
	return cmd
}

func (c *cli) auditCmd() *cobra.Command {
	var lf listFlags
	var actor, target, action, since string
	cmd := &cobra.Command{
		Use:     "audit",
		Short:   "List the audit log: who changed what, when and from where",
		Example: `  herald audit --target ep_123 --since 24h`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := lf.check(); err != nil {
				return err
			}
			where := &client.AuditLogWhere{}
			if actor != "" {
				where.Actor = &actor
			}
			if target != "" {
				where.Target = &target
			}
			if action != "" {
				where.Action = &action
			}
			if since != "" {
				from, _, err := timeRange(since, "")
				if err != nil {
					return err
				}
				where.Since = &from
			}
			return c.with(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
				p, err := cl.AuditLog(ctx, lf.limit, lf.after, where)
				if err != nil {
					return err
				}
				if c.json {
					return printJSON(c.stdout, p)
				}
				if len(p.Items) == 0 {
					fmt.Fprintln(c.stdout, "No changes match.")
					return nil
				}
				t := newTable(c.stdout, "WHEN", "ACTION", "TARGET", "BY", "FROM", "CHANGES")
				for _, r := range p.Items {
					changes := ""
					if r.Changes != nil {
						changes = string(*r.Changes)
					}
					t.row(r.CreatedAt, r.Action, r.TargetID, fmt.Sprintf("%s %s", r.ActorID, r.ActorName), r.RemoteAddr, changes)
				}
				if err := t.flush(); err != nil {
					return err
				}
				if p.HasNextPage {
					fmt.Fprintf(c.stderr, "more: --after %s\n", p.EndCursor)
				}
				return nil
			})
		},
	}
	lf.register(cmd)
	cmd.Flags().StringVar(&actor, "actor", "", "changes by this key or portal session (key_…)")
	cmd.Flags().StringVar(&target, "target", "", "changes of this object (ep_…, app_…, key_…)")
	cmd.Flags().StringVar(&action, "action", "", "changes by this mutation (createEndpoint, …)")
	cmd.Flags().StringVar(&since, "since", "", "changes since a time or duration (RFC 3339, or 24h)")
	return cmd
}
