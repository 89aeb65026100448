package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/heraldhq/herald/signing"
)

// receive runs a webhook receiver for trying Herald out: it prints every
// delivery, verifies its signature when given the endpoint's secret, and
// answers with a chosen status code.
func receive(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("herald receive", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:9000", "listen address")
	secret := fs.String("secret", "", "the endpoint's signing secret (whsec_…); when set, signatures are verified and bad ones answered 401")
	status := fs.Int("status", http.StatusOK, "status code to answer with (try 500 to watch retries)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *status < 100 || *status > 599 {
		return fmt.Errorf("status %d is not an HTTP status code", *status)
	}
	if *secret != "" {
		if _, err := signing.DecodeSecret(*secret); err != nil {
			return fmt.Errorf("secret: %w", err)
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	var n atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read body", http.StatusBadRequest)
			return
		}
		code := *status
		verdict := "not checked (start with --secret to verify)"
		if *secret != "" {
			if err := signing.Verify(*secret, r.Header, body, 5*time.Minute, time.Now()); err != nil {
				verdict, code = "INVALID: "+err.Error(), http.StatusUnauthorized
			} else {
				verdict = "valid"
			}
		}
		fmt.Fprintf(stdout, "\n#%d %s %s  %s  attempt %s  → %d\n", n.Add(1), r.Method, r.URL.Path,
			r.Header.Get("X-Herald-Event-Type"), r.Header.Get("X-Herald-Attempt"), code)
		fmt.Fprintf(stdout, "  webhook-id: %s\n  signature:  %s\n", r.Header.Get("Webhook-Id"), verdict)
		var pretty strings.Builder
		enc := json.NewEncoder(&pretty)
		enc.SetIndent("  ", "  ")
		var v any
		if json.Unmarshal(body, &v) == nil && enc.Encode(v) == nil {
			fmt.Fprintf(stdout, "  %s", pretty.String())
		} else {
			fmt.Fprintf(stdout, "  %q\n", body)
		}
		w.WriteHeader(code)
	})
	fmt.Fprintf(stdout, "herald receive: listening on http://%s/ (answering %d)\n", ln.Addr(), *status)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
