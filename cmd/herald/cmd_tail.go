package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/client"
)

// timeNow is time.Now; tests of relative times do not need to change it.
var timeNow = time.Now

func (c *cli) tailCmd() *cobra.Command {
	var endpoint, eventType, status string
	var heartbeat time.Duration
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Follow deliveries live as they are created, sent and retried",
		Long: `Follow the app's deliveries live: one line per change (created, attempt
started, attempt finished, queued again, cancelled) until Ctrl-C. The
connection reconnects by itself; a silent one is found dead by its missed
heartbeats. Changes made while disconnected are not replayed: list them
with herald deliveries list --since.

With --json, each change is one JSON object per line.`,
		Example: `  herald tail
  herald tail --endpoint ep_123 --status FAILED --json | jq .error`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := parseStatus(status)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			lc := client.LiveConfig{Heartbeat: heartbeat, OnStatus: c.printLiveStatus}
			cl, err := c.client(lc)
			if err != nil {
				return err
			}
			if !c.json {
				fmt.Fprintf(c.stderr, "Following deliveries on %s (Ctrl-C stops).\n", cl.URL())
			}
			enc := json.NewEncoder(c.stdout)
			err = cl.SubscribeDeliveries(ctx, client.DeliveryFeed{EndpointID: endpoint, EventType: eventType, Status: st}, func(ch client.DeliveryChange) error {
				if c.json {
					return enc.Encode(ch)
				}
				var detail []string
				switch {
				case ch.Error != nil:
					detail = append(detail, *ch.Error)
				case ch.ResponseStatus != nil:
					detail = append(detail, fmt.Sprintf("HTTP %d", *ch.ResponseStatus))
				}
				if ch.DurationMs != nil {
					detail = append(detail, fmt.Sprintf("in %dms", *ch.DurationMs))
				}
				if ch.NextAttemptAt != nil {
					detail = append(detail, "next try "+ch.NextAttemptAt.Local().Format("15:04:05"))
				}
				attempt := "-"
				if ch.AttemptNumber != nil {
					attempt = fmt.Sprintf("#%d", *ch.AttemptNumber)
				}
				line := fmt.Sprintf("%s  %-16s  %-9s  %-4s %-16s  %s  %s  %s", ch.At.Local().Format("15:04:05.000"),
					ch.Kind, ch.Status, attempt, ch.EventType, ch.DeliveryId, ch.EndpointId, strings.Join(detail, " "))
				_, err := fmt.Fprintln(c.stdout, strings.TrimRight(line, " "))
				return err
			})
			if err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "only this endpoint's deliveries")
	cmd.Flags().StringVarP(&eventType, "type", "t", "", "only this event type, or a pattern such as order.*")
	cmd.Flags().StringVar(&status, "status", "", "only changes that leave a delivery in this status")
	cmd.Flags().DurationVar(&heartbeat, "heartbeat", 10*time.Second, "ping the server this often; a connection silent for two heartbeats is dropped and reopened")
	_ = cmd.RegisterFlagCompletionFunc("endpoint", c.completeEndpoints)
	_ = cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(deliveryStatuses, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// printLiveStatus tells a person about the feed's connection, on stderr.
func (c *cli) printLiveStatus(s client.LiveStatus) {
	if c.json {
		b, _ := json.Marshal(map[string]any{"status": s.State.String(), "attempt": s.Attempt, "error": errString(s.Err), "retryInMs": s.RetryIn.Milliseconds()})
		fmt.Fprintln(c.stderr, string(b))
		return
	}
	switch s.State {
	case client.LiveConnected:
		fmt.Fprintln(c.stderr, "connected")
	case client.LiveDisconnected:
		fmt.Fprintf(c.stderr, "disconnected: %v; reconnecting in %s\n", s.Err, s.RetryIn.Round(100*time.Millisecond))
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
