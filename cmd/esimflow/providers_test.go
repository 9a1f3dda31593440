package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runProviders runs `esimflow providers ARGS`.
func runProviders(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	root.RemoveCommand(root.Commands()...)
	root.AddCommand(newProvidersCmd(func(k string) string { return env[k] }))
	var out bytes.Buffer
	root.SetArgs(append([]string{"providers"}, args...))
	root.SetOut(&out)
	root.SetErr(&out)
	err := root.Execute()
	return out.String(), err
}

func write(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestProvidersCheck: the canonical events of a sample, or the precise
// error: which field, which path, which value; which condition held not;
// which key of the file is wrong.
func TestProvidersCheck(t *testing.T) {
	dir := t.TempDir()
	file := write(t, dir, "acme.yaml", `provider: acme
version: "1"
events:
  - name: usage
    when: [{path: kind, equals: usage}]
    type: DATA_USAGE
    fields:
      iccid: sim.iccid
      usedVolume: {path: used, unit: MB}
      totalVolume: {path: total, unit: MB}
`)
	good := write(t, dir, "good.json", `{"kind":"usage","sim":{"iccid":"8912000000000000001"},"used":800,"total":1000}`)
	out, err := runProviders(t, nil, "check", file, good)
	if err != nil || !strings.Contains(out, `"usagePercent": 80`) || !strings.Contains(out, `"usedVolume": 800000000`) {
		t.Errorf("good sample: %v\n%s", err, out)
	}
	bad := write(t, dir, "bad.json", `{"kind":"usage","sim":{"iccid":"8912000000000000001"},"used":"lots","total":1000}`)
	out, err = runProviders(t, nil, "check", file, bad)
	if err == nil || !strings.Contains(out, `usedVolume (used): want a number, got "lots"`) {
		t.Errorf("bad value: %v\n%s", err, out)
	}
	other := write(t, dir, "other.json", `{"kind":"state"}`)
	out, err = runProviders(t, nil, "check", file, other)
	if err == nil || !strings.Contains(out, `rule "usage": when kind equals "usage": got "state"`) {
		t.Errorf("no rule: %v\n%s", err, out)
	}
	typo := write(t, dir, "typo.yaml", `provider: acme
version: "1"
events:
  - name: usage
    when: [{path: kind, equals: usage}]
    type: DATA_USAGE
    fields: {usedVolum: used}
`)
	if _, err := runProviders(t, nil, "check", typo, good); err == nil || !strings.Contains(err.Error(), `"usedVolum" is no canonical field`) {
		t.Errorf("typo in a field name: %v", err)
	}
	out, err = runProviders(t, map[string]string{"ESIMFLOW_PROVIDERS_DIR": dir + "/none"}, "list")
	if err == nil {
		t.Errorf("list with a missing dir: %s", out)
	}
}

// TestReadmeProvidersCheck runs the README's `providers check` examples
// (docs/examples) and compares their output with what the README shows.
func TestReadmeProvidersCheck(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, sample := range []string{"usage.json", "bad.json"} {
		cmd := "$ bin/esimflow providers check docs/examples/acme.yaml docs/examples/" + sample + "\n"
		_, rest, ok := strings.Cut(string(readme), cmd)
		if !ok {
			t.Fatalf("README shows no %q", cmd)
		}
		want, _, _ := strings.Cut(rest, "\n$ ")
		want, _, _ = strings.Cut(want, "```")
		dir := filepath.Join("..", "..", "docs", "examples")
		out, err := runProviders(t, nil, "check", filepath.Join(dir, "acme.yaml"), filepath.Join(dir, sample))
		if err != nil {
			out += "esimflow: " + err.Error() + "\n"
		}
		if strings.TrimSpace(out) != strings.TrimSpace(want) {
			t.Errorf("README shows for %s:\n%s\nthe CLI prints:\n%s", sample, want, out)
		}
	}
}
