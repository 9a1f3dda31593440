package deploy_test

import (
	"debug/elf"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"golang.org/x/mod/modfile"
)

// root is the repository root, seen from this package.
const root = ".."

// images are the images `make images` builds: deploy/<name>/Dockerfile each.
var images = []string{"esimflow", "ingest", "processor", "notifier"}

// instruction is one Dockerfile line: its keyword, flags and arguments.
type instruction struct {
	cmd   string
	flags []string
	args  []string
	line  int
}

type stage struct {
	from, name string
	ins        []instruction
}

// dockerfile parses deploy/<name>/Dockerfile with Docker's own parser into stages.
func dockerfile(t *testing.T, name string) []stage {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "deploy", name, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var stages []stage
	for _, n := range res.AST.Children {
		in := instruction{cmd: strings.ToLower(n.Value), flags: n.Flags, line: n.StartLine}
		for a := n.Next; a != nil; a = a.Next {
			in.args = append(in.args, a.Value)
		}
		if in.cmd == "from" {
			st := stage{from: in.args[0]}
			if len(in.args) == 3 && strings.EqualFold(in.args[1], "as") {
				st.name = in.args[2]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) > 0 {
			stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
		}
	}
	return stages
}

// env is a stage's ENV settings.
func (s stage) env() map[string]string {
	out := map[string]string{}
	for _, in := range s.ins {
		if in.cmd != "env" {
			continue
		}
		// The parser gives key, value, "=" triples.
		for i := 0; i+1 < len(in.args); i += 3 {
			out[in.args[i]] = in.args[i+1]
		}
	}
	return out
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.ins {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

var goBuild = regexp.MustCompile(`cd (\S+) && go build .*-o (\S+) (\S+)$`)

// build is what an image's build stage compiles.
type build struct {
	moduleDir string // relative to the repository root, e.g. "ingest"
	pkg       string // relative to the module, e.g. "./cmd/ingest"
	out       string // the binary, e.g. "/out/ingest"
}

func buildOf(t *testing.T, name string, s stage) build {
	t.Helper()
	for _, in := range s.all("run") {
		if m := goBuild.FindStringSubmatch(strings.Join(in.args, " ")); m != nil {
			return build{moduleDir: m[1], out: m[2], pkg: m[3]}
		}
	}
	t.Fatalf("%s: no `cd MODULE && go build -o OUT PKG` in the build stage", name)
	return build{}
}

// TestDockerfiles checks each image the way a reviewer would: multi-stage,
// GOWORK=off and CGO_ENABLED=0, the binary's package exists, the build stage
// copies exactly the module and what its go.mod replace lines point at (never
// go.work), and the final image is scratch or distroless, runs as a non-root
// user, and starts the binary the build stage made.
func TestDockerfiles(t *testing.T) {
	for _, name := range images {
		t.Run(name, func(t *testing.T) {
			stages := dockerfile(t, name)
			if len(stages) < 2 {
				t.Fatalf("%d stage(s), want a build stage and a final one", len(stages))
			}
			bs, final := stages[0], stages[len(stages)-1]
			if bs.name == "" {
				t.Errorf("the build stage has no name (FROM … AS build)")
			}
			if env := bs.env(); env["GOWORK"] != "off" || env["CGO_ENABLED"] != "0" {
				t.Errorf("build stage ENV %v, want GOWORK=off and CGO_ENABLED=0", env)
			}
			b := buildOf(t, name, bs)

			// The package built is a main package of the module.
			pkgDir := filepath.Join(root, b.moduleDir, b.pkg)
			mains, _ := filepath.Glob(filepath.Join(pkgDir, "main.go"))
			if len(mains) == 0 {
				t.Errorf("%s: no main.go in %s", b.pkg, pkgDir)
			}

			// COPY sources exist, and are the module plus its replaced modules.
			gomod := filepath.Join(root, b.moduleDir, "go.mod")
			data, err := os.ReadFile(gomod)
			if err != nil {
				t.Fatal(err)
			}
			mf, err := modfile.Parse(gomod, data, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{b.moduleDir}
			for _, r := range mf.Replace {
				if strings.HasPrefix(r.New.Path, ".") {
					want = append(want, path.Clean(path.Join(b.moduleDir, r.New.Path)))
				}
			}
			var copied []string
			for _, in := range bs.all("copy") {
				srcs := in.args[:len(in.args)-1]
				for _, src := range srcs {
					if _, err := os.Stat(filepath.Join(root, src)); err != nil {
						t.Errorf("line %d: COPY %s: not in the repository", in.line, src)
					}
					if path.Base(src) == "go.work" || path.Base(src) == "go.work.sum" {
						t.Errorf("line %d: COPY %s: images build one module with GOWORK=off", in.line, src)
					}
					if strings.HasSuffix(src, "/") {
						copied = append(copied, strings.TrimSuffix(src, "/"))
					}
				}
			}
			slices.Sort(want)
			slices.Sort(copied)
			if !slices.Equal(want, copied) {
				t.Errorf("copies the folders %v; %s needs %v (itself and its replace targets)", copied, gomod, want)
			}

			// The final image: small, not root, runs the binary.
			if final.from != "scratch" && !strings.Contains(final.from, "distroless") {
				t.Errorf("final image FROM %s, want scratch or distroless", final.from)
			}
			users := final.all("user")
			if len(users) == 0 {
				t.Fatalf("the final stage sets no USER: it would run as root")
			}
			user := users[len(users)-1].args[0]
			uid, _, _ := strings.Cut(user, ":")
			if n, err := strconv.Atoi(uid); user == "root" || (err == nil && n == 0) {
				t.Errorf("USER %s is root", user)
			}
			var binary string
			for _, in := range final.all("copy") {
				if slices.Contains(in.flags, "--from="+bs.name) && in.args[0] == b.out {
					binary = in.args[1]
				}
			}
			entry := final.all("entrypoint")
			if binary == "" || len(entry) == 0 || entry[0].args[0] != binary {
				t.Errorf("final stage: binary copied to %q, ENTRYPOINT %v", binary, entry)
			}
		})
	}
}

// TestEveryImageIsBuilt keeps `make images` and deploy/ in step.
func TestEveryImageIsBuilt(t *testing.T) {
	found, _ := filepath.Glob(filepath.Join(root, "deploy", "*", "Dockerfile"))
	var names []string
	for _, f := range found {
		names = append(names, filepath.Base(filepath.Dir(f)))
	}
	slices.Sort(names)
	want := slices.Sorted(slices.Values(images))
	if !slices.Equal(names, want) {
		t.Errorf("deploy/*/Dockerfile: %v, the test knows %v", names, want)
	}
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^IMAGES\s*:?=\s*(.+)$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("Makefile: no IMAGES := line")
	}
	if got := slices.Sorted(slices.Values(strings.Fields(string(m[1])))); !slices.Equal(got, want) {
		t.Errorf("Makefile IMAGES = %v, want %v", got, want)
	}
}

// TestImagesBuildStage does what each build stage does, without Docker: it
// copies only what the Dockerfile copies into an empty folder, runs its go
// commands there with its ENV, and checks the binary is static (no ELF
// interpreter), so it runs on scratch.
func TestImagesBuildStage(t *testing.T) {
	if os.Getenv("ESIMFLOW_TEST_IMAGE_BUILDS") == "" {
		t.Skip("ESIMFLOW_TEST_IMAGE_BUILDS unset: `make image-builds` runs it (minutes with a cold build cache)")
	}
	for _, name := range images {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			bs := dockerfile(t, name)[0]
			work := t.TempDir()
			src := filepath.Join(work, "src")
			out := filepath.Join(work, "out")
			for _, in := range bs.all("copy") {
				dst := in.args[len(in.args)-1]
				for _, s := range in.args[:len(in.args)-1] {
					// A file copied to a folder keeps its name; a folder's contents land in dst.
					target := filepath.Join(src, dst)
					if fi, err := os.Stat(filepath.Join(root, s)); err == nil && !fi.IsDir() && strings.HasSuffix(dst, "/") {
						target = filepath.Join(target, filepath.Base(s))
					}
					copyTree(t, filepath.Join(root, s), target)
				}
			}
			env := os.Environ()
			for k, v := range bs.env() {
				env = append(env, k+"="+v)
			}
			for _, in := range bs.all("run") {
				script := strings.Join(in.args, " ")
				if !strings.Contains(script, "go ") {
					continue
				}
				script = strings.ReplaceAll(script, "/out/", out+"/")
				cmd := exec.Command("sh", "-c", script)
				cmd.Dir, cmd.Env = src, env
				if b, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("RUN %s: %v\n%s", script, err, b)
				}
			}
			b := buildOf(t, name, bs)
			bin := filepath.Join(out, strings.TrimPrefix(b.out, "/out/"))
			f, err := elf.Open(bin)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					t.Errorf("%s is dynamically linked: it would not start on scratch", bin)
				}
			}
		})
	}
}

// copyTree copies a file or a folder, as COPY does.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		target := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatalf("copy %s: %v", from, err)
	}
}
