package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/client"
)

// publishFlags are the options publish and trigger share.
type publishFlags struct {
	idempotencyKey string
	orderingKey    string
	deliverAt      string
}

func (p *publishFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&p.idempotencyKey, "idempotency-key", "", "publishing again with the same key returns the first event and sends nothing new")
	f.StringVar(&p.orderingKey, "ordering-key", "", "events with the same key reach endpoints with ordering KEY one at a time, in order")
	f.StringVar(&p.deliverAt, "deliver-at", "", "send the deliveries later: a time (2026-05-01T09:00:00Z) or a delay from now (10m)")
}

func (p *publishFlags) input(eventType string, payload json.RawMessage) (client.PublishEventInput, error) {
	in := client.PublishEventInput{EventType: eventType, Payload: payload}
	if p.idempotencyKey != "" {
		in.IdempotencyKey = &p.idempotencyKey
	}
	if p.orderingKey != "" {
		in.OrderingKey = &p.orderingKey
	}
	if p.deliverAt != "" {
		t, err := parseWhen(p.deliverAt, time.Now(), +1)
		if err != nil {
			return in, usageErrorf("--deliver-at: %v", err)
		}
		in.DeliverAt = &t
	}
	return in, nil
}

// parseWhen reads a time as RFC 3339, a date, or a duration from now
// (sign -1: ago, for --since; +1: ahead, for --deliver-at).
func parseWhen(s string, now time.Time, sign int) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(time.Duration(sign) * d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is neither a time such as 2026-05-01T09:00:00Z or 2026-05-01 nor a duration such as 90m", s)
}

// readData reads --data: JSON itself, @file, or @- for standard input.
func readData(flag, s string, stdin io.Reader) (json.RawMessage, error) {
	var b []byte
	switch {
	case s == "":
		return nil, usageErrorf("%s is required: JSON, @file or @- for standard input", flag)
	case s == "@-":
		var err error
		if b, err = io.ReadAll(stdin); err != nil {
			return nil, fmt.Errorf("read standard input: %w", err)
		}
	case strings.HasPrefix(s, "@"):
		var err error
		if b, err = os.ReadFile(s[1:]); err != nil {
			return nil, usageErrorf("%s: %v", flag, err)
		}
	default:
		b = []byte(s)
	}
	if !json.Valid(b) {
		var v any
		err := json.Unmarshal(b, &v)
		return nil, usageErrorf("%s is not valid JSON: %v", flag, err)
	}
	return json.RawMessage(strings.TrimSpace(string(b))), nil
}

func (c *cli) printPublished(ev *client.Event) error {
	if c.json {
		return printJSON(c.stdout, ev)
	}
	when := ""
	if ev.DeliverAt != nil {
		when = ", sent at " + cell(ev.DeliverAt)
	}
	fmt.Fprintf(c.stdout, "Published %s (%s) to %d endpoint%s%s.\n", ev.ID, ev.EventType, ev.DeliveryCount, plural(ev.DeliveryCount), when)
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func (c *cli) publishCmd() *cobra.Command {
	var pf publishFlags
	var data string
	cmd := &cobra.Command{
		Use:   "publish TYPE --data JSON|@file|@-",
		Short: "Publish an event to every endpoint subscribed to its type",
		Example: `  herald publish order.created --data '{"id": "ord_1", "total": 4990}'
  herald publish order.created --data @order.json --idempotency-key order-1-created
  herald publish invoice.due --data '{}' --deliver-at 24h`,
		Args:              exactArgs(1, "TYPE"),
		ValidArgsFunction: c.completeEventTypes,
		RunE: func(cmd *cobra.Command, args []string) error {
			payload, err := readData("--data", data, c.stdin)
			if err != nil {
				return err
			}
			in, err := pf.input(args[0], payload)
			if err != nil {
				return err
			}
			return c.with(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
				ev, err := cl.Publish(ctx, in)
				if err != nil {
					return err
				}
				return c.printPublished(ev)
			})
		},
	}
	cmd.Flags().StringVarP(&data, "data", "d", "", "the payload: JSON, @file, or @- to read standard input")
	pf.register(cmd)
	return cmd
}

func (c *cli) triggerCmd() *cobra.Command {
	var pf publishFlags
	cmd := &cobra.Command{
		Use:   "trigger TYPE",
		Short: "Publish the catalog's example payload of an event type",
		Long: `Publish the catalog's example payload of an event type: a quick way to
send a realistic event to your endpoints while you build a receiver.`,
		Example:           `  herald trigger order.created`,
		Args:              exactArgs(1, "TYPE"),
		ValidArgsFunction: c.completeEventTypes,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.with(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
				et, err := cl.EventType(ctx, args[0])
				if err != nil {
					return err
				}
				if et.Example == nil || len(*et.Example) == 0 || string(*et.Example) == "null" {
					return usageErrorf("event type %s has no example payload in the catalog: publish one with herald publish %s --data JSON", et.Name, et.Name)
				}
				in, err := pf.input(et.Name, *et.Example)
				if err != nil {
					return err
				}
				ev, err := cl.Publish(ctx, in)
				if err != nil {
					return err
				}
				return c.printPublished(ev)
			})
		},
	}
	pf.register(cmd)
	return cmd
}

// with runs f with an API client.
func (c *cli) with(ctx context.Context, f func(context.Context, *client.Client) error) error {
	cl, err := c.client(client.LiveConfig{})
	if err != nil {
		return err
	}
	return f(ctx, cl)
}

// exactArgs wants n arguments, named in the error.
func exactArgs(n int, names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s takes %s (got %d argument%s)\nRun '%s --help' for usage.", cmd.CommandPath(), strings.Join(names, " "), len(args), plural(len(args)), cmd.CommandPath())
		}
		return nil
	}
}

// completeEventTypes completes the catalog's event types.
func (c *cli) completeEventTypes(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	cl, err := c.client(client.LiveConfig{})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	after := ""
	for range 10 {
		p, err := cl.EventTypes(cmd.Context(), 100, after)
		if err != nil {
			break
		}
		for _, et := range p.Items {
			if et.ArchivedAt == nil {
				out = append(out, cobra.CompletionWithDesc(et.Name, et.Description))
			}
		}
		if !p.HasNextPage {
			break
		}
		after = p.EndCursor
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
