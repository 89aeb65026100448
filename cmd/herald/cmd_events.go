package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/client"
)

func (c *cli) eventsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "events",
		Aliases: []string{"event"},
		Short:   "List and show published events",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var lf listFlags
	var eventType, since, until string
	list := &cobra.Command{
		Use:     "list",
		Short:   "List events, newest first",
		Example: `  herald events list --type 'order.*' --since 1h`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := lf.check(); err != nil {
				return err
			}
			q := client.EventQuery{First: lf.limit, After: lf.after, EventType: eventType}
			var err error
			if q.Since, q.Until, err = timeRange(since, until); err != nil {
				return err
			}
			return c.with(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
				p, err := cl.Events(ctx, q)
				if err != nil {
					return err
				}
				if c.json {
					return printJSON(c.stdout, p)
				}
				if len(p.Items) == 0 {
					fmt.Fprintln(c.stdout, "No events match.")
					return nil
				}
				t := newTable(c.stdout, "ID", "TYPE", "CREATED", "DELIVERIES", "ORDERING KEY", "IDEMPOTENCY KEY")
				for _, e := range p.Items {
					t.row(e.ID, e.EventType, e.CreatedAt, e.DeliveryCount, e.OrderingKey, e.IdempotencyKey)
				}
				if err := t.flush(); err != nil {
					return err
				}
				morePages(c.stderr, p.HasNextPage, p.EndCursor, p.TotalCount, len(p.Items))
				return nil
			})
		},
	}
	lf.register(list)
	list.Flags().StringVarP(&eventType, "type", "t", "", "an event type, or a pattern such as order.*")
	list.Flags().StringVar(&since, "since", "", "created at or after: a time (2026-05-01T09:00:00Z, 2026-05-01) or a duration ago (1h)")
	list.Flags().StringVar(&until, "until", "", "created before: a time or a duration ago")

	get := &cobra.Command{
		Use:   "get ID",
		Short: "Show an event, its payload and its deliveries",
		Args:  exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.with(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
				e, err := cl.Event(ctx, args[0])
				if err != nil {
					return err
				}
				ds, err := cl.Deliveries(ctx, client.DeliveryQuery{EventID: e.ID, First: 100})
				if err != nil {
					return err
				}
				if c.json {
					return printJSON(c.stdout, map[string]any{"event": e, "deliveries": ds.Items})
				}
				if err := fields(c.stdout, "ID", e.ID, "Type", e.EventType, "Created", e.CreatedAt,
					"Deliver at", e.DeliverAt, "Ordering key", e.OrderingKey, "Idempotency key", e.IdempotencyKey); err != nil {
					return err
				}
				var pretty bytes.Buffer
				if json.Indent(&pretty, e.Payload, "  ", "  ") != nil {
					pretty.Reset()
					pretty.Write(e.Payload)
				}
				fmt.Fprintf(c.stdout, "\nPayload:\n  %s\n", pretty.String())
				if len(ds.Items) == 0 {
					fmt.Fprintln(c.stdout, "\nNo deliveries: no active endpoint subscribes to its type.")
					return nil
				}
				fmt.Fprintln(c.stdout, "\nDeliveries:")
				return c.deliveryTable(ds.Items)
			})
		},
	}
	cmd.AddCommand(list, get)
	return cmd
}

// timeRange parses --since and --until.
func timeRange(since, until string) (from, to time.Time, err error) {
	now := time.Now()
	if since != "" {
		if from, err = parseWhen(since, now, -1); err != nil {
			return from, to, usageErrorf("--since: %v", err)
		}
	}
	if until != "" {
		if to, err = parseWhen(until, now, -1); err != nil {
			return from, to, usageErrorf("--until: %v", err)
		}
	}
	return from, to, nil
}
