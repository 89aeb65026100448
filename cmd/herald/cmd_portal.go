package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/client"
)

func (c *cli) portalLinkCmd() *cobra.Command {
	var expiresIn, name string
	var readOnly bool
	cmd := &cobra.Command{
		Use:   "portal-link [--app ID]",
		Short: "Make a customer-portal link for an app",
		Long: `Make a link to the customer portal of an app (the key's own, or --app for
admin keys): a scoped, expiring session for one of your customers, where
they manage their endpoints and see their deliveries. Send them the link;
it works until it expires or is revoked.`,
		Example: `  herald portal-link --app app_123 --expires-in 24h --name "Acme Corp"`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := client.CreatePortalSessionInput{}
			if c.app != "" {
				in.AppId = &c.app
			}
			if expiresIn != "" {
				in.ExpiresIn = &expiresIn
			}
			if readOnly {
				in.ReadOnly = &readOnly
			}
			if name != "" {
				in.Name = &name
			}
			return c.with(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
				s, err := cl.CreatePortalSession(ctx, in)
				if err != nil {
					return err
				}
				if c.json {
					return printJSON(c.stdout, s)
				}
				fmt.Fprintln(c.stdout, s.URL)
				mode := ""
				if s.ReadOnly {
					mode = "read-only, "
				}
				fmt.Fprintf(c.stderr, "(%sexpires %s; revoke with the revokePortalSession mutation, id %s)\n", mode, cell(s.ExpiresAt), s.ID)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&expiresIn, "expires-in", "", "how long the link works (default 1h, at most 168h)")
	cmd.Flags().BoolVar(&readOnly, "read-only", false, "the customer may look but not change endpoints, test, retry or replay")
	cmd.Flags().StringVar(&name, "name", "", "a label for the session, such as the customer's name")
	return cmd
}
