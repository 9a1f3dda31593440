package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/esimflow/esimflow/cmd/esimflow/allinone/allinonetest"
	"github.com/esimflow/esimflow/shared/poll"
)

// system is a running all-in-one for the CLI to talk to.
type system struct{ *allinonetest.System }

// startSystem runs the all-in-one with env until the test ends (or Stop).
func startSystem(t *testing.T, env map[string]string) *system {
	t.Helper()
	return &system{allinonetest.Start(t, env)}
}

func (s *system) post(t *testing.T, body string) {
	t.Helper()
	resp, err := http.Post(s.Hook, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
}

// run runs the CLI with args, env as its environment and stdin as input.
func run(t *testing.T, env map[string]string, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRoot()
	root.RemoveCommand(root.Commands()...)
	root.AddCommand(newDLQCmd(func(k string) string { return env[k] }), newReplayCmd(func(k string) string { return env[k] }))
	var out, errOut bytes.Buffer
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	err = root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// dlqSystem runs an all-in-one with a bearer token holding one dead letter
// (#1: a profile event without a status) and returns the CLI's environment.
func dlqSystem(t *testing.T) (*system, map[string]string) {
	t.Helper()
	sys := startSystem(t, map[string]string{"ESIMFLOW_DATA_DIR": t.TempDir(), "ESIMFLOW_ADMIN_TOKEN": "s3cret"})
	sys.post(t, `{"eventType":"PROFILE_STATUS","iccid":"8901","orderNo":"O1"}`) // no status: dead letter
	env := map[string]string{"ESIMFLOW_API_URL": sys.API, "ESIMFLOW_ADMIN_TOKEN": "s3cret"}
	poll.Until(t, "the dead letter listed", func() bool {
		out, _, err := run(t, env, "", "dlq", "list")
		return err == nil && strings.Contains(out, "missing status")
	})
	return sys, env
}

// TestDLQCommands drives `esimflow dlq` against a running all-in-one with a
// bearer token: list, show, a refused re-drive, purge that asks first. The
// commands that leave the dead letter in place share one system; each that
// deletes it gets a system of its own, so every case runs alone and in any
// order.
func TestDLQCommands(t *testing.T) {
	sys, env := dlqSystem(t)
	tests := []struct {
		name    string
		deletes bool // needs a system of its own
		env     map[string]string
		stdin   string
		args    []string
		wantOut string
		wantErr string
	}{
		{"list", false, env, "", []string{"dlq", "list", "--source", "events"}, "esim.events.profile_status #1", ""},
		{"wrong token", false, map[string]string{"ESIMFLOW_API_URL": sys.API}, "", []string{"dlq", "list", "--token", "nope"}, "", "401"},
		{"api flag wins", false, map[string]string{}, "", []string{"dlq", "list", "--api", sys.API, "--token", "s3cret"}, "missing status", ""},
		{"show", false, env, "", []string{"dlq", "show", "1"}, `"iccid": "8901"`, ""},
		{"show unknown", false, env, "", []string{"dlq", "show", "99"}, "", "404"},
		{"redrive inside the duplicate window", false, env, "", []string{"dlq", "redrive", "1"}, "", "1 of 1 not re-driven"},
		{"purge not confirmed", false, env, "n\n", []string{"dlq", "purge"}, "", "not confirmed"},
		{"purge one, confirmed", true, nil, "y\n", []string{"dlq", "purge", "1"}, "dead letter 1 deleted", ""},
		{"purge all without asking", true, nil, "", []string{"dlq", "purge", "--yes"}, "1 dead letters deleted", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := tt.env
			if tt.deletes {
				_, env = dlqSystem(t)
			}
			out, errOut, err := run(t, env, tt.stdin, tt.args...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error()+errOut, tt.wantErr) {
					t.Errorf("err %v (stderr %q), want %q", err, errOut, tt.wantErr)
				}
				return
			}
			if err != nil || !strings.Contains(out, tt.wantOut) {
				t.Errorf("out %q err %v (stderr %q), want %q", out, err, errOut, tt.wantOut)
			}
			if tt.deletes {
				if out, _, err := run(t, env, "", "dlq", "list"); err != nil || strings.Contains(out, "missing status") {
					t.Errorf("after %v: list %q, %v; want the dead letter gone", tt.args, out, err)
				}
			}
		})
	}
}
