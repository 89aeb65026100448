package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/client"
)

func (c *cli) endpointsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "endpoints",
		Aliases: []string{"endpoint", "ep"},
		Short:   "List, create, change, test and delete endpoints",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(c.endpointsListCmd(), c.endpointsGetCmd(), c.endpointsCreateCmd(), c.endpointsUpdateCmd(),
		c.endpointsSetActiveCmd(true), c.endpointsSetActiveCmd(false), c.endpointsDeleteCmd(),
		c.endpointsTestCmd(), c.endpointsRotateCmd())
	return cmd
}

// listFlags are the paging flags of list commands.
type listFlags struct {
	limit int
	after string
}

func (l *listFlags) register(cmd *cobra.Command) {
	cmd.Flags().IntVarP(&l.limit, "limit", "n", 20, "how many to show (at most 100)")
	cmd.Flags().StringVar(&l.after, "after", "", "continue after this cursor (printed under a full page)")
}

func (l *listFlags) check() error {
	if l.limit < 1 || l.limit > 100 {
		return usageErrorf("--limit must be between 1 and 100, got %d", l.limit)
	}
	return nil
}

func (c *cli) endpointsListCmd() *cobra.Command {
	var lf listFlags
	var active, inactive bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List endpoints, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := lf.check(); err != nil {
				return err
			}
			q := client.EndpointQuery{First: lf.limit, After: lf.after}
			switch {
			case active && inactive:
				return usageErrorf("--active and --inactive exclude each other")
			case active:
				q.Active = new(true)
			case inactive:
				q.Active = new(false)
			}
			return c.with(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
				p, err := cl.Endpoints(ctx, q)
				if err != nil {
					return err
				}
				if c.json {
					return printJSON(c.stdout, p)
				}
				if len(p.Items) == 0 {
					fmt.Fprintln(c.stdout, "No endpoints yet: create one with herald endpoints create --url URL.")
					return nil
				}
				t := newTable(c.stdout, "ID", "NAME", "TYPE", "URL", "EVENT TYPES", "ACTIVE", "HEALTH")
				for _, e := range p.Items {
					t.row(e.ID, e.Name, endpointType(e), e.URL, e.EventTypes, e.IsActive, e.Health)
				}
				if err := t.flush(); err != nil {
					return err
				}
				morePages(c.stderr, p.HasNextPage, p.EndCursor, p.TotalCount, len(p.Items))
				return nil
			})
		},
	}
	lf.register(cmd)
	cmd.Flags().BoolVar(&active, "active", false, "only active endpoints")
	cmd.Flags().BoolVar(&inactive, "inactive", false, "only inactive (disabled) endpoints")
	return cmd
}

// endpointType is an endpoint's type for a table: a listener says whether
// herald listen holds it.
func endpointType(e client.Endpoint) string {
	if e.Listener == nil {
		return string(e.Type)
	}
	if e.Listener.Connected {
		return "LISTENER (connected)"
	}
	return "LISTENER"
}

// printEndpoint shows one endpoint, and its secret when there is one.
func (c *cli) printEndpoint(e *client.Endpoint, secret string) error {
	if c.json {
		if secret != "" {
			return printJSON(c.stdout, map[string]any{"endpoint": e, "secret": secret})
		}
		return printJSON(c.stdout, e)
	}
	rate := "-"
	if e.RateLimit != nil {
		rate = fmt.Sprintf("%d per %s", e.RateLimit.Requests, e.RateLimit.Per)
	}
	filter := "-"
	if e.Filter != nil {
		filter = string(*e.Filter)
	}
	kv := []any{
		"ID", e.ID, "Name", e.Name, "URL", e.URL, "Event types", e.EventTypes,
		"Active", e.IsActive, "Health", e.Health,
	}
	if e.DisabledReason != nil {
		kv = append(kv, "Disabled", *e.DisabledReason+" ("+cell(e.DisabledAt)+")")
	}
	kv = append(kv, "Type", endpointType(*e))
	if l := e.Listener; l != nil {
		state := "not connected: its deliveries wait for herald listen"
		if l.Connected {
			state = "connected: a herald listen session holds it"
		}
		kv = append(kv, "Listener", state, "Expires", cell(l.ExpiresAt)+" unless herald listen connects again (TTL "+l.TTL+")")
	}
	kv = append(kv,
		"Ordering", e.Ordering, "Timeout", e.Timeout,
		"Retries", fmt.Sprintf("%d attempts, %s first wait, ×%g, at most %s", e.RetryPolicy.MaxAttempts, e.RetryPolicy.InitialDelay, e.RetryPolicy.BackoffMultiplier, e.RetryPolicy.MaxDelay),
		"Rate limit", rate, "Filter", filter, "Auth", e.Auth.Type,
		"Succeeded", e.SuccessCount, "Failed", e.FailureCount, "Last success", e.LastSuccessAt, "Last failure", e.LastFailureAt,
		"Created", e.CreatedAt,
	)
	if e.Description != "" {
		kv = append(kv, "Description", e.Description)
	}
	for _, h := range e.Headers {
		kv = append(kv, "Header", h.Name+": "+h.Value)
	}
	if err := fields(c.stdout, kv...); err != nil {
		return err
	}
	if secret != "" {
		fmt.Fprintf(c.stdout, "\nSigning secret (shown only now; verify deliveries with it):\n\n    %s\n", secret)
	}
	return nil
}

func (c *cli) endpointsGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "get ID",
		Short:             "Show an endpoint",
		Args:              exactArgs(1, "ID"),
		ValidArgsFunction: c.completeEndpoints,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.with(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
				e, err := cl.Endpoint(ctx, args[0])
				if err != nil {
					return err
				}
				return c.printEndpoint(e, "")
			})
		},
	}
}

// endpointFlags are the settings create and update share.
type endpointFlags struct {
	name, description, url string
	eventTypes             []string
	headers                []string
	rateLimit              string
	filter                 string
	timeout                string
	maxAttempts            int
	ordering               string
	active                 bool
	allowDuplicate         bool
	noFilter, noRateLimit  bool
}

func (f *endpointFlags) register(cmd *cobra.Command, update bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.name, "name", "", "display name (default on create: the URL's host)")
	fl.StringVar(&f.description, "description", "", "what the endpoint is for")
	fl.StringVar(&f.url, "url", "", "the URL that receives the events")
	fl.StringSliceVarP(&f.eventTypes, "event-type", "t", nil, "event types to receive: a name, a pattern such as order.*, or * (repeat or separate with commas; default on create: *)")
	fl.StringArrayVarP(&f.headers, "header", "H", nil, "a header sent with every delivery, \"Name: value\" (repeat; on update, replaces them all)")
	fl.StringVar(&f.rateLimit, "rate-limit", "", "at most this many requests per window, such as 10/1s or 600/1m")
	fl.StringVar(&f.filter, "filter", "", "deliver only events whose envelope matches this payload filter (JSON or @file)")
	fl.StringVar(&f.timeout, "timeout", "", "time limit of one attempt, 100ms-30s")
	fl.IntVar(&f.maxAttempts, "max-attempts", 0, "total attempts of a delivery, 1-50")
	fl.StringVar(&f.ordering, "ordering", "", "NONE, KEY (one at a time per ordering key) or STRICT")
	fl.BoolVar(&f.allowDuplicate, "allow-duplicate", false, "allow another endpoint with the same URL and overlapping types")
	if update {
		fl.BoolVar(&f.noFilter, "no-filter", false, "remove the payload filter")
		fl.BoolVar(&f.noRateLimit, "no-rate-limit", false, "remove the rate limit")
	} else {
		fl.BoolVar(&f.active, "inactive", false, "create it inactive: it receives nothing until enabled")
	}
	_ = cmd.RegisterFlagCompletionFunc("ordering", cobra.FixedCompletions([]cobra.Completion{"NONE", "KEY", "STRICT"}, cobra.ShellCompDirectiveNoFileComp))
}

func parseRateLimit(s string) (*client.RateLimitInput, error) {
	n, per, ok := strings.Cut(s, "/")
	req, err := strconv.Atoi(strings.TrimSpace(n))
	if !ok || err != nil || req < 1 {
		return nil, usageErrorf("--rate-limit %q: want requests/window, such as 10/1s or 600/1m", s)
	}
	per = strings.TrimSpace(per)
	if per == "s" || per == "m" || per == "h" {
		per = "1" + per
	}
	return &client.RateLimitInput{Requests: req, Per: per}, nil
}

func parseHeaders(hs []string) ([]client.HeaderInput, error) {
	var out []client.HeaderInput
	for _, h := range hs {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, usageErrorf("--header %q: want \"Name: value\"", h)
		}
		out = append(out, client.HeaderInput{Name: strings.TrimSpace(name), Value: strings.TrimSpace(value)})
	}
	return out, nil
}

func (c *cli) endpointsCreateCmd() *cobra.Command {
	var f endpointFlags
	cmd := &cobra.Command{
		Use:   "create --url URL [flags]",
		Short: "Create an endpoint and print its signing secret",
		Example: `  herald endpoints create --url https://example.com/webhooks --event-type 'order.*'
  herald endpoints create --url http://localhost:3000/hooks --rate-limit 10/1s --max-attempts 3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.url == "" {
				return usageErrorf("--url is required: the URL that receives the events")
			}
			in := client.CreateEndpointInput{Url: client.Ptr(f.url), Name: f.name, EventTypes: f.eventTypes}
			if in.Name == "" {
				in.Name = hostOf(f.url)
			}
			if len(in.EventTypes) == 0 {
				in.EventTypes = []string{"*"}
			}
			if f.description != "" {
				in.Description = &f.description
			}
			var err error
			if in.Headers, err = parseHeaders(f.headers); err != nil {
				return err
			}
			if f.rateLimit != "" {
				if in.RateLimit, err = parseRateLimit(f.rateLimit); err != nil {
					return err
				}
			}
			if f.filter != "" {
				raw, err := readData("--filter", f.filter, c.stdin)
				if err != nil {
					return err
				}
				in.Filter = &raw
			}
			if f.timeout != "" {
				in.Timeout = &f.timeout
			}
			if f.maxAttempts != 0 {
				in.RetryPolicy = &client.RetryPolicyInput{MaxAttempts: &f.maxAttempts}
			}
			if f.ordering != "" {
				o := client.Ordering(strings.ToUpper(f.ordering))
				in.Ordering = &o
			}
			if f.active { // --inactive
				in.IsActive = new(false)
			}
			if f.allowDuplicate {
				in.AllowDuplicate = new(true)
			}
			return c.with(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
				e, secret, err := cl.CreateEndpoint(ctx, in)
				if err != nil {
					return err
				}
				return c.printEndpoint(e, secret)
			})
		},
	}
	f.register(cmd, false)
	return cmd
}

func hostOf(u string) string {
	s := u
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		s = s[:i]
	}
	if len(s) < 2 {
		return u
	}
	return s
}

func (c *cli) endpointsUpdateCmd() *cobra.Command {
	var f endpointFlags
	cmd := &cobra.Command{
		Use:               "update ID [flags]",
		Short:             "Change an endpoint: only the flags given change",
		Example:           `  herald endpoints update ep_123 --event-type 'order.*,invoice.*' --no-rate-limit`,
		Args:              exactArgs(1, "ID"),
		ValidArgsFunction: c.completeEndpoints,
		RunE: func(cmd *cobra.Command, args []string) error {
			var in client.UpdateEndpointInput
			changed := cmd.Flags().Changed
			if changed("name") {
				in.Name = &f.name
			}
			if changed("description") {
				in.Description = &f.description
			}
			if changed("url") {
				in.Url = &f.url
			}
			if changed("event-type") {
				in.EventTypes = f.eventTypes
			}
			var err error
			if changed("header") {
				if in.Headers, err = parseHeaders(f.headers); err != nil {
					return err
				}
				if in.Headers == nil {
					in.Headers = []client.HeaderInput{}
				}
			}
			if changed("rate-limit") {
				if f.noRateLimit {
					return usageErrorf("--rate-limit and --no-rate-limit exclude each other")
				}
				if in.RateLimit, err = parseRateLimit(f.rateLimit); err != nil {
					return err
				}
			}
			if changed("filter") {
				if f.noFilter {
					return usageErrorf("--filter and --no-filter exclude each other")
				}
				raw, err := readData("--filter", f.filter, c.stdin)
				if err != nil {
					return err
				}
				in.Filter = &raw
			}
			if changed("timeout") {
				in.Timeout = &f.timeout
			}
			if changed("max-attempts") {
				in.RetryPolicy = &client.RetryPolicyInput{MaxAttempts: &f.maxAttempts}
			}
			if changed("ordering") {
				o := client.Ordering(strings.ToUpper(f.ordering))
				in.Ordering = &o
			}
			if changed("allow-duplicate") {
				in.AllowDuplicate = &f.allowDuplicate
			}
			empty, _ := json.Marshal(client.UpdateEndpointInput{})
			cur, _ := json.Marshal(in)
			if string(empty) == string(cur) && !f.noFilter && !f.noRateLimit {
				return usageErrorf("nothing to change: give at least one flag (see herald endpoints update --help)")
			}
			return c.with(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
				id := args[0]
				var e *client.Endpoint
				var err error
				if string(empty) != string(cur) {
					if e, err = cl.UpdateEndpoint(ctx, id, in); err != nil {
						return err
					}
				}
				if f.noFilter {
					if e, err = cl.ClearEndpointFilter(ctx, id); err != nil {
						return err
					}
				}
				if f.noRateLimit {
					if e, err = cl.ClearEndpointRateLimit(ctx, id); err != nil {
						return err
					}
				}
				return c.printEndpoint(e, "")
			})
		},
	}
	f.register(cmd, true)
	return cmd
}

func (c *cli) endpointsSetActiveCmd(on bool) *cobra.Command {
	use, short := "enable ID", "Make an endpoint active again (resets its consecutive failures)"
	if !on {
		use, short = "disable ID", "Stop deliveries to an endpoint (its pending deliveries fail)"
	}
	return &cobra.Command{
		Use:               use,
		Short:             short,
		Args:              exactArgs(1, "ID"),
		ValidArgsFunction: c.completeEndpoints,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.with(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
				var e *client.Endpoint
				var err error
				if on {
					e, err = cl.EnableEndpoint(ctx, args[0])
				} else {
					e, err = cl.DisableEndpoint(ctx, args[0])
				}
				if err != nil {
					return err
				}
				if c.json {
					return printJSON(c.stdout, e)
				}
				state := "enabled"
				if !e.IsActive {
					state = "disabled"
				}
				fmt.Fprintf(c.stdout, "Endpoint %s (%s) is %s.\n", e.ID, e.Name, state)
				return nil
			})
		},
	}
}

func (c *cli) endpointsDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "delete ID",
		Short:             "Delete an endpoint (its deliveries stay in the logs; pending ones are cancelled)",
		Args:              exactArgs(1, "ID"),
		ValidArgsFunction: c.completeEndpoints,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.with(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
				if err := cl.DeleteEndpoint(ctx, args[0]); err != nil {
					return err
				}
				if c.json {
					return printJSON(c.stdout, map[string]string{"deletedId": args[0]})
				}
				fmt.Fprintf(c.stdout, "Deleted endpoint %s.\n", args[0])
				return nil
			})
		},
	}
}

func (c *cli) endpointsTestCmd() *cobra.Command {
	var eventType, data string
	cmd := &cobra.Command{
		Use:   "test ID",
		Short: "Send one event to an endpoint now and show its answer",
		Long: `Send one event to an endpoint now, even an inactive one, and show its
answer. Exits with 1 when the endpoint does not answer 2xx.`,
		Args:              exactArgs(1, "ID"),
		ValidArgsFunction: c.completeEndpoints,
		RunE: func(cmd *cobra.Command, args []string) error {
			var payload json.RawMessage
			if data != "" {
				var err error
				if payload, err = readData("--data", data, c.stdin); err != nil {
					return err
				}
			}
			return c.with(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
				r, err := cl.TestEndpoint(ctx, args[0], eventType, payload)
				if err != nil {
					return err
				}
				if c.json {
					if err := printJSON(c.stdout, r); err != nil {
						return err
					}
				} else {
					body := "-"
					if r.ResponseBody != nil {
						body = truncate(*r.ResponseBody, 500)
					}
					kv := []any{"Delivered", r.Delivered, "Status", r.StatusCode, "Duration", fmt.Sprintf("%dms", r.DurationMs)}
					if r.Error != nil {
						kv = append(kv, "Error", *r.Error)
					}
					kv = append(kv, "Response", body)
					if r.Attempt != nil {
						kv = append(kv, "Attempt", r.Attempt.ID)
					} else {
						kv = append(kv, "Delivery", r.DeliveryID+" (not sent yet)")
					}
					if err := fields(c.stdout, kv...); err != nil {
						return err
					}
				}
				if !r.Delivered {
					reason := "it did not answer 2xx"
					if r.Error != nil {
						reason = *r.Error
					} else if r.StatusCode != nil {
						reason = fmt.Sprintf("it answered %d", *r.StatusCode)
					}
					return &exitError{code: exitFailure, err: fmt.Errorf("the test delivery to %s failed: %s", args[0], reason)}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&eventType, "event-type", "t", "test.ping", "the event type to send")
	cmd.Flags().StringVarP(&data, "data", "d", "", "the payload (JSON, @file or @-; default: the type's example)")
	return cmd
}

func (c *cli) endpointsRotateCmd() *cobra.Command {
	var overlap string
	cmd := &cobra.Command{
		Use:               "rotate-secret ID",
		Short:             "Replace an endpoint's signing secret and print the new one",
		Long:              "Replace an endpoint's signing secret and print the new one. Deliveries are\nsigned with both secrets until the overlap ends, so receivers can switch.",
		Args:              exactArgs(1, "ID"),
		ValidArgsFunction: c.completeEndpoints,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.with(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
				e, secret, err := cl.RotateEndpointSecret(ctx, args[0], overlap)
				if err != nil {
					return err
				}
				if c.json {
					return printJSON(c.stdout, map[string]any{"endpoint": e, "secret": secret})
				}
				until := "now"
				if e.PreviousSecretExpiresAt != nil {
					until = cell(e.PreviousSecretExpiresAt)
				}
				fmt.Fprintf(c.stdout, "New signing secret of %s (shown only now):\n\n    %s\n\nThe previous secret also signs until %s.\n", e.ID, secret, until)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&overlap, "overlap", "", "how long the previous secret also signs (default 24h, at most 168h; 0s: not at all)")
	return cmd
}

// completeEndpoints completes endpoint IDs, with their names.
func (c *cli) completeEndpoints(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	cl, err := c.client(client.LiveConfig{})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	p, err := cl.Endpoints(cmd.Context(), client.EndpointQuery{First: 100})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, e := range p.Items {
		out = append(out, cobra.CompletionWithDesc(e.ID, e.Name+" "+e.URL))
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
