package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/client"
)

var deliveryStatuses = []cobra.Completion{"PENDING", "SENDING", "RETRYING", "SUCCEEDED", "FAILED"}

func parseStatus(s string) (client.DeliveryStatus, error) {
	if s == "" {
		return "", nil
	}
	st := client.DeliveryStatus(strings.ToUpper(s))
	for _, v := range client.AllDeliveryStatus {
		if v == st {
			return st, nil
		}
	}
	return "", usageErrorf("--status %q: use one of %s", s, strings.Join(deliveryStatuses, ", "))
}

func (c *cli) deliveryTable(ds []client.Delivery) error {
	t := newTable(c.stdout, "ID", "EVENT", "TYPE", "ENDPOINT", "STATUS", "ATTEMPTS", "LAST STATUS", "CREATED")
	for _, d := range ds {
		t.row(d.ID, d.EventID, d.EventType, d.EndpointID, d.Status, d.AttemptCount, d.LastResponseStatus, d.CreatedAt)
	}
	return t.flush()
}

func (c *cli) deliveriesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "deliveries",
		Aliases: []string{"delivery"},
		Short:   "List, show and retry deliveries",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var lf listFlags
	var endpoint, event, eventType, status, since, until string
	list := &cobra.Command{
		Use:     "list",
		Short:   "List deliveries, newest first",
		Example: `  herald deliveries list --endpoint ep_123 --status FAILED --since 24h`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := lf.check(); err != nil {
				return err
			}
			st, err := parseStatus(status)
			if err != nil {
				return err
			}
			q := client.DeliveryQuery{First: lf.limit, After: lf.after, EndpointID: endpoint, EventID: event, EventType: eventType, Status: st}
			if q.Since, q.Until, err = timeRange(since, until); err != nil {
				return err
			}
			return c.with(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
				p, err := cl.Deliveries(ctx, q)
				if err != nil {
					return err
				}
				if c.json {
					return printJSON(c.stdout, p)
				}
				if len(p.Items) == 0 {
					fmt.Fprintln(c.stdout, "No deliveries match.")
					return nil
				}
				if err := c.deliveryTable(p.Items); err != nil {
					return err
				}
				morePages(c.stderr, p.HasNextPage, p.EndCursor, p.TotalCount, len(p.Items))
				return nil
			})
		},
	}
	lf.register(list)
	fl := list.Flags()
	fl.StringVar(&endpoint, "endpoint", "", "deliveries of this endpoint")
	fl.StringVar(&event, "event", "", "deliveries of this event")
	fl.StringVarP(&eventType, "type", "t", "", "deliveries of this event type")
	fl.StringVar(&status, "status", "", "PENDING, SENDING, RETRYING, SUCCEEDED or FAILED")
	fl.StringVar(&since, "since", "", "created at or after: a time or a duration ago (24h)")
	fl.StringVar(&until, "until", "", "created before: a time or a duration ago")
	_ = list.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(deliveryStatuses, cobra.ShellCompDirectiveNoFileComp))
	_ = list.RegisterFlagCompletionFunc("endpoint", c.completeEndpoints)

	get := &cobra.Command{
		Use:   "get ID",
		Short: "Show a delivery and its attempts",
		Args:  exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.with(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
				d, err := cl.Delivery(ctx, args[0])
				if err != nil {
					return err
				}
				if c.json {
					return printJSON(c.stdout, map[string]any{"delivery": d.Delivery, "attempts": d.Attempts})
				}
				kv := []any{"ID", d.ID, "Event", d.EventID, "Type", d.EventType, "Endpoint", d.EndpointID,
					"Status", d.Status, "Attempts", d.AttemptCount, "Created", d.CreatedAt}
				if d.NextAttemptAt != nil {
					kv = append(kv, "Next attempt", d.NextAttemptAt)
				}
				if d.LastError != nil {
					kv = append(kv, "Last error", *d.LastError)
				}
				if err := fields(c.stdout, kv...); err != nil {
					return err
				}
				if len(d.Attempts) == 0 {
					return nil
				}
				fmt.Fprintln(c.stdout, "\nAttempts:")
				t := newTable(c.stdout, "#", "TRIGGER", "STARTED", "STATUS", "DURATION", "ERROR / RESPONSE")
				for _, a := range d.Attempts {
					detail := truncate(strings.Join(strings.Fields(a.ResponseBody), " "), 60)
					if a.ErrorMessage != nil {
						detail = *a.ErrorMessage
					}
					t.row(a.AttemptNumber, a.Trigger, a.StartedAt, a.ResponseStatus, fmt.Sprintf("%dms", a.DurationMs), detail)
				}
				return t.flush()
			})
		},
	}
	retry := &cobra.Command{
		Use:   "retry ID...",
		Short: "Queue another attempt of deliveries now",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("%s takes one or more delivery IDs", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.with(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
				var out []*client.Delivery
				var errs []error
				for _, id := range args {
					d, err := cl.RetryDelivery(ctx, id)
					if err != nil {
						errs = append(errs, fmt.Errorf("%s: %w", id, err))
						continue
					}
					out = append(out, d)
					if !c.json {
						fmt.Fprintf(c.stdout, "Queued %s again (%s, attempt %d next).\n", d.ID, d.Status, d.AttemptCount+1)
					}
				}
				if c.json {
					if err := printJSON(c.stdout, out); err != nil {
						return err
					}
				}
				if len(errs) == 1 {
					return errs[0]
				}
				return errors.Join(errs...)
			})
		},
	}
	cmd.AddCommand(list, get, retry)
	return cmd
}

func (c *cli) replayCmd() *cobra.Command {
	var endpoint, since, status string
	cmd := &cobra.Command{
		Use:   "replay --endpoint ID --since TIME",
		Short: "Queue again an endpoint's failed (or other) deliveries since a time",
		Long: `Queue again every delivery of an endpoint with the status (FAILED unless
--status says otherwise) created since a time: after fixing a receiver,
replay what it missed.`,
		Example: `  herald replay --endpoint ep_123 --since 6h
  herald replay --endpoint ep_123 --since 2026-05-01 --status SUCCEEDED`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if endpoint == "" || since == "" {
				return usageErrorf("replay needs --endpoint and --since")
			}
			from, err := parseWhen(since, timeNow(), -1)
			if err != nil {
				return usageErrorf("--since: %v", err)
			}
			st, err := parseStatus(status)
			if err != nil {
				return err
			}
			return c.with(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
				n, err := cl.ReplayDeliveries(ctx, endpoint, from, st)
				if err != nil {
					return err
				}
				if c.json {
					return printJSON(c.stdout, map[string]int{"count": n})
				}
				if st == "" {
					st = client.DeliveryStatusFailed
				}
				fmt.Fprintf(c.stdout, "Queued %d %s deliver%s of %s again.\n", n, strings.ToLower(string(st)), map[bool]string{true: "y", false: "ies"}[n == 1], endpoint)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "the endpoint whose deliveries to replay")
	cmd.Flags().StringVar(&since, "since", "", "deliveries created at or after: a time or a duration ago (6h)")
	cmd.Flags().StringVar(&status, "status", "", "the status to replay (default FAILED)")
	_ = cmd.RegisterFlagCompletionFunc("endpoint", c.completeEndpoints)
	_ = cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(deliveryStatuses, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}
