package harness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// profileDuring saves a CPU profile of each of procs (esimflow binaries
// started with their profiles served, Config.Profile: ingest under full
// load, the processor draining, each step of the pipeline) taken over d, as
// <work dir>/profiles/<tag>-<process>.pprof; it returns once every profile
// is written or failed, and notes the failures. Nothing when profiles are
// off.
func (h *Harness) profileDuring(ctx context.Context, tag string, d time.Duration, procs ...*Process) {
	if !h.cfg.Profile {
		return
	}
	dir := filepath.Join(h.cfg.WorkDir, "profiles")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		h.note("profiles: %v", err)
		return
	}
	var wg sync.WaitGroup
	errs := make([]error, len(procs))
	for i, p := range procs {
		wg.Go(func() {
			path := filepath.Join(dir, tag+"-"+p.Name+".pprof")
			errs[i] = fetchProfile(ctx, p.admin, d, path)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			h.note("profile of %s: %v", procs[i].Name, err)
		}
	}
	h.progress("  profiles in %s (%s-*.pprof)", dir, tag)
}

// profileAsync is profileDuring in the background; the channel closes when
// it is done, which the caller waits for before it stops the processes.
func (h *Harness) profileAsync(ctx context.Context, tag string, d time.Duration, procs ...*Process) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.profileDuring(ctx, tag, d, procs...)
	}()
	return done
}

func fetchProfile(ctx context.Context, admin string, d time.Duration, path string) error {
	if admin == "" {
		return fmt.Errorf("no admin listener known")
	}
	url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", admin, max(int(d.Seconds()), 1))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("get %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
