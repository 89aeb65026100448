package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/heraldhq/herald/client"
)

func (c *cli) loginCmd() *cobra.Command {
	var apiKey string
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Save a server URL and API key for the other commands",
		Long: `Save a server URL and API key for the other commands, in a file only you
can read (herald/config.json in your config directory, or $HERALD_CONFIG).
The key is read from --api-key, $HERALD_API_KEY, a prompt, or standard
input, and checked against the server before it is saved.

HERALD_URL and HERALD_API_KEY override the saved values for any command.`,
		Example: `  herald login --url http://localhost:8080
  echo "$KEY" | herald login --url https://herald.example.com`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			saved, path, err := c.loadConfig()
			if err != nil {
				return err
			}
			url := firstNonEmpty(c.url, c.getenv("HERALD_URL"), saved.URL, "http://localhost:8080")
			key := firstNonEmpty(apiKey, c.getenv("HERALD_API_KEY"))
			if key == "" {
				if key, err = c.readKey(); err != nil {
					return err
				}
			}
			app := firstNonEmpty(c.app, c.getenv("HERALD_APP"))
			cl, err := client.New(client.Config{URL: url, APIKey: key, App: app})
			if err != nil {
				return usageErrorf("%v", err)
			}
			v, err := cl.Viewer(cmd.Context())
			if err != nil {
				return err
			}
			if err := saveConfig(path, savedConfig{URL: cl.URL(), APIKey: key, App: app}); err != nil {
				return err
			}
			if c.json {
				return printJSON(c.stdout, map[string]any{"url": cl.URL(), "appId": v.AppID, "appName": v.AppName,
					"keyName": v.KeyName, "keyPrefix": v.KeyPrefix, "admin": v.IsAdmin, "config": path})
			}
			role := ""
			if v.IsAdmin {
				role = ", admin"
			}
			fmt.Fprintf(c.stdout, "Logged in to %s with key %q (%s…%s) of app %q (%s).\nSaved to %s.\n",
				cl.URL(), v.KeyName, v.KeyPrefix, role, v.AppName, v.AppID, path)
			return nil
		},
	}
	cmd.Flags().StringVar(&apiKey, "api-key", "", "the API key (hrld_…); prefer the prompt or standard input, which stay out of shell history")
	return cmd
}

// readKey reads an API key from the terminal without echo, or else the
// first line of standard input.
func (c *cli) readKey() (string, error) {
	if f, ok := c.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(c.stderr, "API key (hrld_…): ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		if err != nil {
			return "", fmt.Errorf("read the API key: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	line, err := bufio.NewReader(c.stdin).ReadString('\n')
	line = strings.TrimSpace(line)
	if line == "" {
		if err != nil && !errors.Is(err, fs.ErrClosed) {
			return "", usageErrorf("no API key: pass --api-key, set HERALD_API_KEY or write it on standard input")
		}
		return "", usageErrorf("no API key: pass --api-key, set HERALD_API_KEY or write it on standard input")
	}
	return line, nil
}

func (c *cli) logoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Forget the saved server URL and API key",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			path, err := c.configPath()
			if err != nil {
				return err
			}
			err = os.Remove(path)
			if errors.Is(err, fs.ErrNotExist) {
				fmt.Fprintf(c.stdout, "Not logged in (no %s).\n", path)
				return nil
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "Logged out: removed %s.\n", path)
			return nil
		},
	}
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}
