package harness

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/esimflow/esimflow/bench/report"
)

// hotBenchmarks matches the Go benchmarks of the hot functions the issue
// names: decode, dedupe key, signature check, merge, intent derivation,
// template render.
var hotBenchmarks = regexp.MustCompile(`func (Benchmark(Decode|DedupeKey|Key|AppendKey|Signature|Verify|Merge|Intent|Template|Render)\w*)\(`)

// micro runs the hot functions' benchmarks wherever they are in the
// repository, with -benchmem, three counts (one when quick).
func (h *Harness) micro(ctx context.Context) ([]report.Micro, error) {
	pkgs, names, err := findHotBenchmarks(h.cfg.RepoDir)
	if err != nil {
		return nil, err
	}
	if len(pkgs) == 0 {
		return nil, fmt.Errorf("no benchmarks of the hot functions under %s", h.cfg.RepoDir)
	}
	count, benchtime := "3", "1s"
	if h.cfg.Quick {
		count, benchtime = "1", "200ms"
	}
	pattern := "^(" + strings.Join(names, "|") + ")$"
	args := append([]string{"test", "-run", "^$", "-bench", pattern, "-benchmem", "-count", count, "-benchtime", benchtime}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = h.cfg.RepoDir
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go test -bench: %w: %s", err, lastLine(stderr.Bytes()))
	}
	return report.ParseGoBench(&out)
}

// findHotBenchmarks walks the repository's _test.go files and returns the
// package directories (./relative) holding hot benchmarks, and their names.
func findHotBenchmarks(root string) (pkgs, names []string, err error) {
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "bin", "data", "node_modules", "deploy", "bench":
				return filepath.SkipDir
			}
			return nil
		}
		if filepath.Ext(path) != ".go" || !strings.HasSuffix(d.Name(), "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		found := hotBenchmarks.FindAllSubmatch(src, -1)
		if len(found) == 0 {
			return nil
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		if pkg := "./" + filepath.ToSlash(rel); !slices.Contains(pkgs, pkg) {
			pkgs = append(pkgs, pkg)
		}
		for _, f := range found {
			if name := string(f[1]); !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("find benchmarks: %w", err)
	}
	slices.Sort(pkgs)
	return pkgs, names, nil
}
