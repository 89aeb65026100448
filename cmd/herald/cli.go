package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/client"
	"github.com/heraldhq/herald/server"
)

// cli is what every command shares: its streams, its environment and the
// global flags.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	url    string // --url
	app    string // --app
	json   bool   // --json
	config string // --config
}

// FlagSetCommand is a command that parses its own flags with a
// flag.FlagSet, as `herald serve`, `herald receive`, `herald migrate` and
// `herald backup` do. It returns flag.ErrHelp after printing its usage for
// -h or --help.
type FlagSetCommand func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// mount makes a FlagSetCommand a subcommand: its arguments, flags
// included, pass through untouched, and `herald help NAME` shows its own
// usage.
func mount(use, short, long string, run FlagSetCommand) *cobra.Command {
	cmd := &cobra.Command{
		Use:                use,
		Short:              short,
		Long:               long,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			err := run(cmd.Context(), args, cmd.OutOrStdout(), cmd.ErrOrStderr())
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			if err != nil {
				code := exitFailure
				// The flag package's own errors are about the command line.
				if m := err.Error(); strings.HasPrefix(m, "flag provided but not defined") || strings.HasPrefix(m, "invalid value") ||
					strings.HasPrefix(m, "invalid boolean") || strings.HasPrefix(m, "bad flag syntax") || strings.HasPrefix(m, "flag needs an argument") {
					code = exitUsage
				}
				return &exitError{code: code, err: err}
			}
			return nil
		},
	}
	cmd.SetHelpFunc(func(cmd *cobra.Command, _ []string) {
		if cmd.Long != "" {
			fmt.Fprintln(cmd.ErrOrStderr(), cmd.Long)
			fmt.Fprintln(cmd.ErrOrStderr())
		}
		_ = run(context.Background(), []string{"-h"}, cmd.OutOrStdout(), cmd.ErrOrStderr())
	})
	return cmd
}

// newRoot builds the herald command tree.
func newRoot(c *cli) *cobra.Command {
	root := &cobra.Command{
		Use:   "herald",
		Short: "Herald: webhooks delivered reliably, signed, retried and visible live",
		Long: `Herald sends your platform's events to your customers' endpoints: signed
(Standard Webhooks), retried, logged and visible live.

Start a server with "herald serve --dev" (or "make run" in the repository);
then log in with "herald login" and publish, manage endpoints and watch
deliveries from here. Every client command takes --json for scripts.`,
		Version:       server.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Without a command, herald explains itself rather than starting
		// a production server by surprise.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.SetIn(c.stdin)
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.SetVersionTemplate("herald {{.Version}}\n")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageErrorf("%v\nRun '%s --help' for usage.", err, cmd.CommandPath())
	})

	pf := root.PersistentFlags()
	pf.StringVar(&c.url, "url", "", "Herald's URL (default: $HERALD_URL, else the one saved by herald login)")
	pf.StringVar(&c.app, "app", "", "the app to act in, for admin keys (default: $HERALD_APP, else the key's own app)")
	pf.BoolVar(&c.json, "json", false, "print JSON for scripts instead of tables")
	pf.StringVar(&c.config, "config", "", "the config file (default: $HERALD_CONFIG, else herald/config.json in the user's config directory)")

	root.AddGroup(
		&cobra.Group{ID: "server", Title: "Running Herald:"},
		&cobra.Group{ID: "client", Title: "Using a Herald server:"},
	)
	serverCmds := []*cobra.Command{
		mount("serve [flags]", "Start the Herald server",
			"Start the Herald server. Every flag can also be set with an environment\nvariable: --db is HERALD_DB, --allow-http is HERALD_ALLOW_HTTP, and so on;\nflags win over the environment.",
			func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
				return serve(ctx, args, c.getenv, stdout, stderr)
			}),
		mount("receive [flags]", "Run a webhook receiver that prints and verifies deliveries", "", receive),
		mount("migrate status|up [flags]", "Show or apply the database's pending migrations",
			"Show (status) or apply (up) the database's pending schema migrations.\n\"herald migrate up --dry-run\" prints the SQL without running it. See docs/upgrading.md.", migrateCmd),
		mount("backup --out FILE [flags]", "Copy a SQLite database while herald serves it",
			"Copy a SQLite database to FILE while herald serves it, from one read\nsnapshot, checked before it is renamed into place. See docs/backups.md.", backupCmd),
	}
	for _, cmd := range serverCmds {
		cmd.GroupID = "server"
		root.AddCommand(cmd)
	}
	for _, cmd := range []*cobra.Command{
		c.loginCmd(), c.logoutCmd(), c.publishCmd(), c.triggerCmd(), c.endpointsCmd(), c.eventsCmd(),
		c.deliveriesCmd(), c.replayCmd(), c.tailCmd(), c.listenCmd(), c.portalLinkCmd(), c.catalogCmd(), c.keysCmd(), c.auditCmd(),
	} {
		cmd.GroupID = "client"
		root.AddCommand(cmd)
	}
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print Herald's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "herald", server.Version)
		},
	})
	root.InitDefaultCompletionCmd()
	return root
}

// run runs herald with args and returns the error to report, if any.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runWith(ctx, args, os.Stdin, stdout, stderr, os.Getenv)
}

func runWith(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) > 0 && strings.HasPrefix(args[0], "-") && !isRootFlag(args[0]) {
		// herald once started the server without a command.
		return usageErrorf("unknown flag %s: herald needs a command first; to start the server run \"herald serve %s\"", args[0], strings.Join(args, " "))
	}
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	root := newRoot(c)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

// isRootFlag reports whether arg is one of the root command's own flags.
func isRootFlag(arg string) bool {
	name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	switch name {
	case "h", "help", "version", "v", "url", "app", "json", "config":
		return true
	}
	return false
}

// client returns an API client for the command's settings: --url, then
// $HERALD_URL, then the config file; $HERALD_API_KEY, then the config
// file.
func (c *cli) client(cfg client.LiveConfig) (*client.Client, error) {
	conn, err := c.connection()
	if err != nil {
		return nil, err
	}
	cl, err := client.New(client.Config{URL: conn.URL, APIKey: conn.APIKey, App: conn.App, UserAgent: "herald-cli/" + server.Version, Live: cfg})
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	return cl, nil
}
