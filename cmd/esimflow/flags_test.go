package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// TestAPIFlags: every command that talks to the internal API has the same
// --api, --token and --timeout, and --help never prints the token it would
// send.
func TestAPIFlags(t *testing.T) {
	env := map[string]string{"ESIMFLOW_ADMIN_TOKEN": "t0p-secret", "ESIMFLOW_API_URL": "http://127.0.0.1:9999"}
	for _, args := range [][]string{{"status"}, {"order", "X"}, {"profile", "X"}, {"dlq", "list"}, {"dlq", "purge"}, {"simulate"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			root := newRoot()
			root.RemoveCommand(root.Commands()...)
			getenv := func(k string) string { return env[k] }
			root.AddCommand(newStatusCmd(getenv), newOrderCmd(getenv), newProfileCmd(getenv), newDLQCmd(getenv), newSimulateCmd(getenv))
			var out bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&out)
			root.SetArgs(append(args, "--help"))
			if err := root.ExecuteContext(context.Background()); err != nil {
				t.Fatal(err)
			}
			help := out.String()
			if strings.Contains(help, "t0p-secret") {
				t.Errorf("--help prints the token:\n%s", help)
			}
			for _, want := range []string{"--api strings", "$ESIMFLOW_API_URL", "--token string", "(default $ESIMFLOW_ADMIN_TOKEN)", "--timeout duration", "(default 10s)"} {
				if !strings.Contains(help, want) {
					t.Errorf("no %q in:\n%s", want, help)
				}
			}
		})
	}
}

// TestAPIFlagsResolve: the flags win over the configuration, which wins over
// the defaults.
func TestAPIFlagsResolve(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		args      []string
		wantBases []string
		wantToken string
		wantErr   string
	}{
		{"defaults", nil, nil, []string{"http://127.0.0.1:8081"}, "", ""},
		{"environment", map[string]string{"ESIMFLOW_API_URL": "http://a:1/, http://b:2", "ESIMFLOW_ADMIN_TOKEN": "e"}, nil, []string{"http://a:1", "http://b:2"}, "e", ""},
		{"flags win", map[string]string{"ESIMFLOW_API_URL": "http://a:1", "ESIMFLOW_ADMIN_TOKEN": "e"}, []string{"--api", "http://c:3", "--api", "http://d:4", "--token", "f"}, []string{"http://c:3", "http://d:4"}, "f", ""},
		{"bad environment", map[string]string{"ESIMFLOW_API_URL": "ftp://x"}, nil, nil, "", "ESIMFLOW_API_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := &cobra.Command{Use: "x"}
			f := newAPIFlags(cmd, func(k string) string { return tt.env[k] })
			if err := cmd.PersistentFlags().Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			cs, err := f.clients()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var bases []string
			for _, c := range cs {
				bases = append(bases, c.base)
				if c.token != tt.wantToken || c.http.Timeout != 10*time.Second {
					t.Errorf("%s: token %q timeout %v", c.base, c.token, c.http.Timeout)
				}
			}
			if strings.Join(bases, " ") != strings.Join(tt.wantBases, " ") {
				t.Errorf("APIs %v, want %v", bases, tt.wantBases)
			}
		})
	}
}
