package deploy_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/stream"
	"go.yaml.in/yaml/v3"
)

type doc = map[string]any

// decodeAll reads a multi-document YAML stream into generic maps.
func decodeAll(t *testing.T, r io.Reader) []doc {
	t.Helper()
	dec := yaml.NewDecoder(r)
	var out []doc
	for {
		var d doc
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if d != nil {
			out = append(out, d)
		}
	}
}

// baseFiles reads the base's resources as listed in its kustomization.yaml.
func baseFiles(t *testing.T) []doc {
	t.Helper()
	dir := filepath.Join(root, "deploy", "k8s", "base")
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct{ Resources []string }
	if err := yaml.Unmarshal(b, &k); err != nil {
		t.Fatal(err)
	}
	var out []doc
	for _, f := range k.Resources {
		fb, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, decodeAll(t, bytes.NewReader(fb))...)
	}
	return out
}

// at walks a generic document: strings index maps, ints index lists.
func at(d any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, ok := d.(doc)
			if !ok {
				return nil
			}
			d = m[k]
		case int:
			l, ok := d.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			d = l[k]
		}
	}
	return d
}

func str(d any, keys ...any) string {
	s, _ := at(d, keys...).(string)
	return s
}

func list(d any, keys ...any) []any {
	l, _ := at(d, keys...).([]any)
	return l
}

func byKind(docs []doc, kind string) map[string]doc {
	out := map[string]doc{}
	for _, d := range docs {
		if str(d, "kind") == kind {
			out[str(d, "metadata", "name")] = d
		}
	}
	return out
}

// TestKubernetes checks the manifests against the code: the base as files,
// and the base and the production overlay as kustomize renders them when
// kubectl is installed.
func TestKubernetes(t *testing.T) {
	t.Run("base files", func(t *testing.T) { checkManifests(t, baseFiles(t)) })
	kubectl, err := exec.LookPath("kubectl")
	for _, dir := range []string{"base", "overlays/production"} {
		t.Run("kustomize "+dir, func(t *testing.T) {
			if err != nil {
				t.Skip("kubectl is not installed: the kustomize build is not checked")
			}
			var out, stderr bytes.Buffer
			cmd := exec.Command(kubectl, "kustomize", filepath.Join(root, "deploy", "k8s", dir))
			cmd.Stdout, cmd.Stderr = &out, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.String())
			}
			checkManifests(t, decodeAll(t, &out))
		})
	}
}

func checkManifests(t *testing.T, docs []doc) {
	known := map[string]config.Setting{}
	for _, s := range config.Settings() {
		known[s.Env] = s
	}
	configMaps := byKind(docs, "ConfigMap")
	deployments := byKind(docs, "Deployment")
	pdbs := byKind(docs, "PodDisruptionBudget")
	scaled := byKind(docs, "ScaledObject")

	for name, cm := range configMaps {
		for k, raw := range at(cm, "data").(doc) {
			if _, ok := known[k]; !ok && strings.HasPrefix(k, "ESIMFLOW_") {
				t.Errorf("ConfigMap %s: %s is not a setting of shared/config", name, k)
			}
			if v, _ := raw.(string); known[k].Secret && !credentialFreeURL(v) {
				t.Errorf("ConfigMap %s: %s is a secret: put it in a Secret", name, k)
			}
		}
	}
	want := []string{"ingest", "notifier", "processor"}
	if got := slices.Sorted(mapKeys(deployments)); !slices.Equal(got, want) {
		t.Errorf("Deployments %v, want %v", got, want)
	}
	for name, d := range deployments {
		containers := list(d, "spec", "template", "spec", "containers")
		if len(containers) != 1 {
			t.Errorf("%s: %d containers, want 1", name, len(containers))
			continue
		}
		c := containers[0]
		image, _, _ := strings.Cut(str(c, "image"), ":")
		if !strings.HasSuffix(image, "esimflow/"+name) {
			t.Errorf("%s: image %s, want esimflow/%s", name, str(c, "image"), name)
		}
		// The environment the container gets: ConfigMaps, then env.
		env := map[string]string{}
		for _, ef := range list(c, "envFrom") {
			cm := configMaps[str(ef, "configMapRef", "name")]
			if cm == nil {
				t.Errorf("%s: envFrom names no ConfigMap of the manifests: %v", name, ef)
				continue
			}
			for k, v := range at(cm, "data").(doc) {
				env[k], _ = v.(string)
			}
		}
		for _, e := range list(c, "env") {
			k := str(e, "name")
			if _, ok := known[k]; !ok {
				t.Errorf("%s: env %s is not a setting of shared/config", name, k)
			}
			if ref := at(e, "valueFrom", "secretKeyRef"); ref != nil {
				if at(ref, "optional") == true {
					// A missing Secret must stop the pod, not start it open.
					t.Errorf("%s: secret %s is optional", name, k)
				}
				env[k] = secretSamples[k]
				if env[k] == "" {
					env[k] = "s3cret"
				}
				continue
			}
			if known[k].Secret && !credentialFreeURL(str(e, "value")) {
				t.Errorf("%s: %s is a secret, set as a literal: use valueFrom.secretKeyRef", name, k)
			}
			env[k] = str(e, "value")
		}
		cfg, err := config.Load(func(k string) string { return env[k] })
		if err != nil {
			t.Errorf("%s: the service would refuse its configuration: %v", name, err)
			continue
		}
		ports := map[string]int{}
		for _, p := range list(c, "ports") {
			n, _ := at(p, "containerPort").(int)
			ports[str(p, "name")] = n
		}
		if want := atoi(port(t, cfg.Admin.Addr)); ports["admin"] != int(want) {
			t.Errorf("%s: admin containerPort %d, ESIMFLOW_ADMIN_ADDR listens on %d", name, ports["admin"], want)
		}
		if want := atoi(port(t, cfg.Ingest.HTTPAddr)); name == "ingest" && ports["http"] != int(want) {
			t.Errorf("%s: http containerPort %d, ESIMFLOW_HTTP_ADDR listens on %d", name, ports["http"], want)
		}
		for probe, wantPath := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz"} {
			get := at(c, probe, "httpGet")
			p := at(get, "port")
			if str(get, "path") != wantPath || (p != "admin" && p != ports["admin"]) {
				t.Errorf("%s: %s %v, want GET %s on the admin port", name, probe, get, wantPath)
			}
		}
		if str(c, "resources", "requests", "cpu") == "" || str(c, "resources", "requests", "memory") == "" {
			t.Errorf("%s: no cpu and memory requests", name)
		}
		if at(d, "spec", "template", "spec", "automountServiceAccountToken") != false {
			t.Errorf("%s: mounts a service account token it never uses", name)
		}
		if at(d, "spec", "template", "spec", "securityContext", "runAsNonRoot") != true {
			t.Errorf("%s: runAsNonRoot is not set", name)
		}
		labels := at(d, "spec", "template", "metadata", "labels").(doc)
		pdb := pdbs[name]
		if pdb == nil {
			t.Errorf("%s: no PodDisruptionBudget", name)
		} else {
			for k, v := range at(pdb, "spec", "selector", "matchLabels").(doc) {
				if labels[k] != v {
					t.Errorf("%s: PodDisruptionBudget selects %s=%v, the pods carry %v", name, k, v, labels[k])
				}
			}
		}
	}

	checkNetworkPolicies(t, byKind(docs, "NetworkPolicy"))

	// KEDA scales each consumer on the lag of the consumer the code creates.
	triggers := map[string][2]string{
		"processor": {stream.Events, stream.ProcessorConsumer},
		"notifier":  {stream.Notify, stream.NotifierConsumer},
	}
	if got := slices.Sorted(mapKeys(scaled)); !slices.Equal(got, []string{"notifier", "processor"}) {
		t.Errorf("ScaledObjects %v, want notifier and processor", got)
	}
	for name, so := range scaled {
		if target := str(so, "spec", "scaleTargetRef", "name"); deployments[target] == nil || target != name {
			t.Errorf("ScaledObject %s scales %q", name, target)
		}
		trig := list(so, "spec", "triggers")
		if len(trig) != 1 || str(trig[0], "type") != "nats-jetstream" {
			t.Errorf("ScaledObject %s: triggers %v, want one nats-jetstream", name, trig)
			continue
		}
		want := triggers[name]
		if s, c := str(trig[0], "metadata", "stream"), str(trig[0], "metadata", "consumer"); s != want[0] || c != want[1] {
			t.Errorf("ScaledObject %s: stream %s consumer %s, the code names %s and %s", name, s, c, want[0], want[1])
		}
		if str(trig[0], "metadata", "natsServerMonitoringEndpoint") == "" || str(trig[0], "metadata", "lagThreshold") == "" {
			t.Errorf("ScaledObject %s: needs natsServerMonitoringEndpoint and lagThreshold", name)
		}
	}
}

// secretSamples are values of the shape the code accepts, standing in for
// what the Secrets hold.
var secretSamples = map[string]string{
	"ESIMFLOW_REDIS_URL":           "rediss+cluster://esimflow:pw@redis-0:6380,redis-1:6380,redis-2:6380",
	"ESIMFLOW_INGEST_HMAC_SECRETS": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
}

// credentialFreeURL: a URL setting may be plain configuration when it carries
// no user, password or token.
func credentialFreeURL(v string) bool {
	return strings.Contains(v, "://") && config.RedactURLs(v) == v && !strings.Contains(v, "@")
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// checkNetworkPolicies: ingress is denied by default; the admin port is open
// to the namespace and monitoring only; nothing but ingest's webhook port is
// open to everyone.
func checkNetworkPolicies(t *testing.T, policies map[string]doc) {
	t.Helper()
	var denyAll bool
	for name, np := range policies {
		rules := list(np, "spec", "ingress")
		if len(at(np, "spec", "podSelector").(doc)) == 0 && len(rules) == 0 {
			denyAll = true
		}
		for _, r := range rules {
			open := len(list(r, "from")) == 0
			for _, p := range list(r, "ports") {
				port := at(p, "port")
				if port == "admin" && open {
					t.Errorf("NetworkPolicy %s opens the admin port to everyone", name)
				}
				if open && (port != "http" || str(np, "spec", "podSelector", "matchLabels", "app.kubernetes.io/name") != "ingest") {
					t.Errorf("NetworkPolicy %s opens %v to everyone; only ingest's webhook port may be", name, port)
				}
			}
		}
	}
	if !denyAll {
		t.Error("no default-deny NetworkPolicy: every port of every pod is open")
	}
}
