package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestResultsFileKeepsTheDaysFirstRun: a second full run on one day is
// written beside the first, not over it.
func TestResultsFileKeepsTheDaysFirstRun(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 30, 2, 5, 0, 0, time.UTC)
	first := resultsFile(dir, now)
	if want := filepath.Join(dir, "2026-11-30.md"); first != want {
		t.Fatalf("first run: %s; want %s", first, want)
	}
	if err := os.WriteFile(first, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, want := resultsFile(dir, now), filepath.Join(dir, "2026-11-30-0205.md"); got != want {
		t.Errorf("second run: %s; want %s", got, want)
	}
}
