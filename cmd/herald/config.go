package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// savedConfig is what herald login stores: the server and the key to use.
type savedConfig struct {
	URL    string `json:"url"`
	APIKey string `json:"apiKey"`
	// App is the app an admin key acts in by default ("": its own).
	App string `json:"app,omitempty"`
}

// configPath returns the config file's path: --config, $HERALD_CONFIG, or
// herald/config.json in the user's config directory ($XDG_CONFIG_HOME or
// ~/.config on Linux).
func (c *cli) configPath() (string, error) {
	if c.config != "" {
		return c.config, nil
	}
	if p := c.getenv("HERALD_CONFIG"); p != "" {
		return p, nil
	}
	dir := c.getenv("XDG_CONFIG_HOME")
	if dir == "" {
		d, err := os.UserConfigDir()
		if err != nil {
			return "", fmt.Errorf("find the config directory: %w (set HERALD_CONFIG to a file path)", err)
		}
		dir = d
	}
	return filepath.Join(dir, "herald", "config.json"), nil
}

// loadConfig reads the config file; a missing one is an empty config.
func (c *cli) loadConfig() (savedConfig, string, error) {
	var sc savedConfig
	path, err := c.configPath()
	if err != nil {
		return sc, "", err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return sc, path, nil
	}
	if err != nil {
		return sc, path, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &sc); err != nil {
		return sc, path, fmt.Errorf("%s is not herald's config: %w (run herald login again)", path, err)
	}
	return sc, path, nil
}

// saveConfig writes the config file readable by the user only, replacing
// it atomically.
func saveConfig(path string, sc savedConfig) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	b, _ := json.MarshalIndent(sc, "", "  ")
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*.json")
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("save %s: %w", path, err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

// connection resolves the server URL, API key and app of a client
// command.
func (c *cli) connection() (savedConfig, error) {
	sc, path, err := c.loadConfig()
	if err != nil {
		return sc, err
	}
	pick := func(vals ...string) string {
		for _, v := range vals {
			if v = strings.TrimSpace(v); v != "" {
				return v
			}
		}
		return ""
	}
	out := savedConfig{
		URL:    pick(c.url, c.getenv("HERALD_URL"), sc.URL),
		APIKey: pick(c.getenv("HERALD_API_KEY"), sc.APIKey),
		App:    pick(c.app, c.getenv("HERALD_APP"), sc.App),
	}
	if out.URL == "" || out.APIKey == "" {
		return out, &exitError{code: exitAuth, err: fmt.Errorf("not logged in: run \"herald login\" (or set HERALD_URL and HERALD_API_KEY); no config at %s", path)}
	}
	return out, nil
}
