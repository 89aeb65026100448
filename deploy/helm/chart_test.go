// Package helm tests Herald's Helm chart (herald/) without a cluster: it
// renders the chart with Helm's Go library for SQLite, for PostgreSQL with
// three replicas, and with every optional part on, lints it, validates
// every manifest against the OpenAPI schemas of Kubernetes
// (kubernetesRelease, strictly: no field the schema lacks) or, for the
// Prometheus Operator's kinds, by strict decoding into its Go types, and
// checks what matters for running Herald safely.
package helm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// kubernetesRelease is the release whose OpenAPI schemas the manifests must
// satisfy: its api/openapi-spec/v3, from the k8s.io/kubernetes module.
const kubernetesRelease = "v1.37.2"

const chartDir = "herald"

// valueSets are the values the chart is rendered and linted with.
var valueSets = map[string]string{
	"sqlite": ``,
	"postgres-3-replicas": `
replicaCount: 3
database:
  type: postgres
  existingSecret: herald-db
encryption:
  existingSecret: herald-keys
`,
	"everything": `
replicaCount: 3
database:
  type: postgres
  existingSecret: herald-db
  existingSecretKey: dsn
  maxConns: 20
encryption:
  existingSecret: herald-keys
migrations:
  mode: job
catalog:
  configMap: herald-catalog
config:
  publicURL: https://herald.example.com
  allowDestinations: 10.1.0.0/16
  corsOrigins: https://app.example.com
extraEnv:
  - name: OTEL_EXPORTER_OTLP_HEADERS
    valueFrom:
      secretKeyRef: {name: otel, key: headers}
extraEnvFrom:
  - secretRef: {name: herald-extra}
ingress:
  enabled: true
  className: nginx
  hosts:
    - host: herald.example.com
      paths: [{path: /, pathType: Prefix}]
  tls:
    - secretName: herald-tls
      hosts: [herald.example.com]
metrics:
  serviceMonitor: {enabled: true, labels: {release: prometheus}}
  prometheusRule: {enabled: true, labels: {release: prometheus}}
imagePullSecrets: [{name: registry}]
podAnnotations: {example.com/team: platform}
nodeSelector: {kubernetes.io/os: linux}
tolerations: [{key: dedicated, operator: Equal, value: herald, effect: NoSchedule}]
priorityClassName: high
`,
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func kubeVersion(t *testing.T) *chartutil.KubeVersion {
	t.Helper()
	kv, err := chartutil.ParseKubeVersion(kubernetesRelease)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// render renders the chart with the given values (YAML) as `helm template`
// would for a new release, and returns the manifests by kind/name and the
// notes.
func render(t *testing.T, values string) (map[string]map[string]any, string, error) {
	t.Helper()
	c := loadChart(t)
	vals, err := chartutil.ReadValues([]byte(values))
	if err != nil {
		t.Fatal(err)
	}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = *kubeVersion(t)
	rv, err := chartutil.ToRenderValues(c, vals, chartutil.ReleaseOptions{Name: "herald", Namespace: "webhooks", Revision: 1, IsInstall: true}, caps)
	if err != nil {
		t.Fatal(err)
	}
	out, err := engine.Render(c, rv)
	if err != nil {
		return nil, "", err
	}
	objs := map[string]map[string]any{}
	var notes string
	for name, content := range out {
		if strings.HasSuffix(name, "NOTES.txt") {
			notes = content
			continue
		}
		for _, doc := range releaseutil.SplitManifests(content) {
			var obj map[string]any
			if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
				t.Fatalf("%s: %v\n%s", name, err, doc)
			}
			if obj == nil {
				continue
			}
			meta, _ := obj["metadata"].(map[string]any)
			key := fmt.Sprintf("%s/%s", obj["kind"], meta["name"])
			if _, dup := objs[key]; dup {
				t.Fatalf("two objects %s", key)
			}
			objs[key] = obj
		}
	}
	return objs, notes, nil
}

// decode converts a rendered object into a typed one, strictly.
func decode(t *testing.T, obj map[string]any, into any) {
	t.Helper()
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, into); err != nil {
		t.Fatalf("decode %s/%v: %v", obj["kind"], obj["metadata"].(map[string]any)["name"], err)
	}
}

func TestChart_LintIsClean(t *testing.T) {
	for name, values := range valueSets {
		t.Run(name, func(t *testing.T) {
			vals, err := chartutil.ReadValues([]byte(values))
			if err != nil {
				t.Fatal(err)
			}
			l := lint.AllWithKubeVersion(chartDir, vals, "webhooks", kubeVersion(t))
			for _, m := range l.Messages {
				// An icon is recommended; the chart has none to point to.
				if m.Severity == support.InfoSev && strings.Contains(m.Err.Error(), "icon is recommended") {
					continue
				}
				t.Errorf("helm lint: %s", m)
			}
		})
	}
}

func TestChart_ManifestsMatchKubernetesSchemas(t *testing.T) {
	v := newValidator(t)
	for name, values := range valueSets {
		t.Run(name, func(t *testing.T) {
			objs, _, err := render(t, values)
			if err != nil {
				t.Fatal(err)
			}
			for key, obj := range objs {
				switch obj["apiVersion"] {
				case "monitoring.coreos.com/v1":
					// Not Kubernetes' own: the Prometheus Operator's types.
					switch obj["kind"] {
					case "ServiceMonitor":
						decode(t, obj, &monitoringv1.ServiceMonitor{})
					case "PrometheusRule":
						decode(t, obj, &monitoringv1.PrometheusRule{})
					default:
						t.Errorf("%s: unexpected kind", key)
					}
				default:
					if err := v.validate(obj); err != nil {
						t.Errorf("%s does not match Kubernetes %s's schema:\n%v", key, kubernetesRelease, err)
					}
				}
			}
			t.Logf("%d manifests: %s", len(objs), strings.Join(slices.Sorted(mapKeys(objs)), ", "))
		})
	}
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

// podSpec checks what every Herald pod must have.
func checkPod(t *testing.T, name string, pod corev1.PodSpec) corev1.Container {
	t.Helper()
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65532 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod security context %+v: want non-root uid 65532 with seccomp RuntimeDefault", name, psc)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("%s: the ServiceAccount token is mounted; Herald needs no API access", name)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%s: %d containers", name, len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 ||
		(sc.Privileged != nil && *sc.Privileged) {
		t.Errorf("%s: container security context %+v: want a read-only root, no privilege escalation, every capability dropped", name, sc)
	}
	return c
}

func env(c corev1.Container) map[string]corev1.EnvVar {
	m := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		m[e.Name] = e
	}
	return m
}

func TestChart_SQLiteIsOneReplicaOnAVolume(t *testing.T) {
	objs, notes, err := render(t, valueSets["sqlite"])
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	decode(t, objs["Deployment/herald"], &d)
	if *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("replicas %d, strategy %s: want 1 and Recreate (the old process must release the file)", *d.Spec.Replicas, d.Spec.Strategy.Type)
	}
	c := checkPod(t, "deployment", d.Spec.Template.Spec)
	checkProbesAndGrace(t, d.Spec.Template.Spec, c)
	if e := env(c)["HERALD_DB"]; e.Value != "/var/lib/herald/herald.db" {
		t.Errorf("HERALD_DB = %+v", e)
	}
	var pvc corev1.PersistentVolumeClaim
	decode(t, objs["PersistentVolumeClaim/herald"], &pvc)
	if pvc.Annotations["helm.sh/resource-policy"] != "keep" {
		t.Errorf("the database's claim is deleted with the release")
	}
	mounted := false
	for _, vol := range d.Spec.Template.Spec.Volumes {
		if vol.PersistentVolumeClaim != nil && vol.PersistentVolumeClaim.ClaimName == "herald" {
			for _, m := range c.VolumeMounts {
				mounted = mounted || (m.Name == vol.Name && m.MountPath == "/var/lib/herald")
			}
		}
	}
	if !mounted {
		t.Errorf("the claim is not mounted at /var/lib/herald")
	}
	if _, ok := objs["PodDisruptionBudget/herald"]; ok {
		t.Errorf("a PodDisruptionBudget for a single SQLite replica blocks node drains")
	}
	if !strings.Contains(notes, "grep -o 'hrld_") || !strings.Contains(notes, "herald backup") {
		t.Errorf("NOTES.txt does not say how to get the first admin key and back up:\n%s", notes)
	}
}

func checkProbesAndGrace(t *testing.T, pod corev1.PodSpec, c corev1.Container) {
	t.Helper()
	probe := func(name string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || p.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe %+v, want GET %s on the http port", name, p, path)
		}
	}
	probe("liveness", c.LivenessProbe, "/healthz")
	probe("startup", c.StartupProbe, "/healthz")
	probe("readiness", c.ReadinessProbe, "/readyz")
	var grace int64
	if _, err := fmt.Sscanf(env(c)["HERALD_SHUTDOWN_GRACE"].Value, "%ds", &grace); err != nil {
		t.Fatalf("HERALD_SHUTDOWN_GRACE = %q", env(c)["HERALD_SHUTDOWN_GRACE"].Value)
	}
	if pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds <= grace {
		t.Errorf("termination grace %v, want longer than Herald's shutdown grace (%ds)", pod.TerminationGracePeriodSeconds, grace)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v: want CPU and memory requests and a memory limit", c.Resources)
	}
}

func TestChart_PostgresRollsOneReplicaAtATime(t *testing.T) {
	objs, _, err := render(t, valueSets["postgres-3-replicas"])
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	decode(t, objs["Deployment/herald"], &d)
	ru := d.Spec.Strategy.RollingUpdate
	if *d.Spec.Replicas != 3 || d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("replicas %d, strategy %+v: want 3, rolling with no unavailable replica", *d.Spec.Replicas, d.Spec.Strategy)
	}
	c := checkPod(t, "deployment", d.Spec.Template.Spec)
	checkProbesAndGrace(t, d.Spec.Template.Spec, c)
	db := env(c)["HERALD_DB"]
	if db.Value != "" || db.ValueFrom == nil || db.ValueFrom.SecretKeyRef == nil || db.ValueFrom.SecretKeyRef.Name != "herald-db" || db.ValueFrom.SecretKeyRef.Key != "url" {
		t.Errorf("HERALD_DB = %+v, want the URL from the Secret herald-db", db)
	}
	// Every replica encrypts and decrypts endpoints' secrets with the same keys.
	enc := env(c)["HERALD_ENCRYPTION_KEYS"]
	if enc.Value != "" || enc.ValueFrom == nil || enc.ValueFrom.SecretKeyRef == nil || enc.ValueFrom.SecretKeyRef.Name != "herald-keys" || enc.ValueFrom.SecretKeyRef.Key != "keys" {
		t.Errorf("HERALD_ENCRYPTION_KEYS = %+v, want the keys from the Secret herald-keys", enc)
	}
	var pdb policyv1.PodDisruptionBudget
	decode(t, objs["PodDisruptionBudget/herald"], &pdb)
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 {
		t.Errorf("PodDisruptionBudget %+v, want minAvailable 1", pdb.Spec)
	}
	for k, v := range pdb.Spec.Selector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("the PodDisruptionBudget selects %s=%s, which Herald's pods do not have", k, v)
		}
	}
	keys := map[string]bool{}
	for _, tsc := range d.Spec.Template.Spec.TopologySpreadConstraints {
		keys[tsc.TopologyKey] = true
	}
	if !keys["kubernetes.io/hostname"] || !keys["topology.kubernetes.io/zone"] {
		t.Errorf("topology spread over %v, want hostname and zone", keys)
	}
	if _, ok := objs["PersistentVolumeClaim/herald"]; ok {
		t.Errorf("PostgreSQL mode creates a claim")
	}
}

func TestChart_EveryOptionalPart(t *testing.T) {
	objs, notes, err := render(t, valueSets["everything"])
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	decode(t, objs["Deployment/herald"], &d)
	c := checkPod(t, "deployment", d.Spec.Template.Spec)
	e := env(c)
	if e["HERALD_MIGRATE"].Value != "false" || e["HERALD_DB"].ValueFrom.SecretKeyRef.Key != "dsn" || e["OTEL_EXPORTER_OTLP_HEADERS"].ValueFrom == nil {
		t.Errorf("environment %+v: want --migrate=false, the URL under key dsn, the extra secret", e)
	}
	// The catalog file, from its ConfigMap, imported at every start.
	mounted := slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
		return m.Name == "catalog" && m.MountPath == "/etc/herald/catalog" && m.ReadOnly
	})
	fromConfigMap := slices.ContainsFunc(d.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool {
		return v.Name == "catalog" && v.ConfigMap != nil && v.ConfigMap.Name == "herald-catalog"
	})
	if e["HERALD_CATALOG"].Value != "/etc/herald/catalog/catalog.json" || !mounted || !fromConfigMap {
		t.Errorf("catalog: HERALD_CATALOG %q, mounted %v, from the ConfigMap %v", e["HERALD_CATALOG"].Value, mounted, fromConfigMap)
	}
	var job batchv1.Job
	decode(t, objs["Job/herald-migrate"], &job)
	jc := checkPod(t, "migration job", job.Spec.Template.Spec)
	if !slices.Equal(jc.Args, []string{"migrate", "up"}) || job.Annotations["helm.sh/hook"] != "pre-install,pre-upgrade" {
		t.Errorf("migration job: args %q, hook %q", jc.Args, job.Annotations["helm.sh/hook"])
	}
	if job.Spec.Template.Labels["app.kubernetes.io/name"] == d.Spec.Template.Labels["app.kubernetes.io/name"] {
		t.Errorf("the Service would select the migration job's pod")
	}
	var ing networkingv1.Ingress
	decode(t, objs["Ingress/herald"], &ing)
	if ing.Spec.Rules[0].Host != "herald.example.com" || ing.Spec.TLS[0].SecretName != "herald-tls" {
		t.Errorf("ingress %+v", ing.Spec)
	}
	var sm monitoringv1.ServiceMonitor
	decode(t, objs["ServiceMonitor/herald"], &sm)
	if sm.Spec.Endpoints[0].Path != "/metrics" || sm.Spec.Endpoints[0].Port != "http" || sm.Labels["release"] != "prometheus" {
		t.Errorf("service monitor %+v", sm)
	}
	// The rules are deploy/prometheus/alerts.yml's, the one source of them.
	var rule monitoringv1.PrometheusRule
	decode(t, objs["PrometheusRule/herald"], &rule)
	raw, err := os.ReadFile(filepath.Join("..", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var source struct {
		Groups []monitoringv1.RuleGroup `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(raw, &source); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(rule.Spec.Groups)
	want, _ := json.Marshal(source.Groups)
	if !bytes.Equal(got, want) || len(source.Groups) == 0 {
		t.Errorf("the PrometheusRule's groups differ from deploy/prometheus/alerts.yml:\n%s\n%s", got, want)
	}
	if !strings.Contains(notes, "https://herald.example.com/") {
		t.Errorf("NOTES.txt does not give the ingress URL:\n%s", notes)
	}
}

func TestChart_RefusesWhatCannotWork(t *testing.T) {
	cases := []struct{ name, values, want string }{
		{"sqlite with replicas", "replicaCount: 3", "with SQLite one Herald process owns the database file"},
		{"postgres without its secret", "database: {type: postgres}", "database.existingSecret"},
		{"postgres without encryption keys", "database: {type: postgres, existingSecret: herald-db}", "encryption.existingSecret"},
		{"grace too short", "terminationGracePeriodSeconds: 10\nconfig: {shutdownGraceSeconds: 15}", "must be longer than config.shutdownGraceSeconds"},
		{"migration job on sqlite", "migrations: {mode: job}", "migrations.mode=job needs PostgreSQL"},
		{"unknown database", "database: {type: mysql}", "database.type must be sqlite or postgres"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := render(t, c.values)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("render: %v, want an error saying %q", err, c.want)
			}
		})
	}
}

// validator checks manifests against Kubernetes' OpenAPI v3 schemas, made
// strict: an object schema with properties accepts no others (as
// kubeconform's --strict and the API server's field validation do).
type validator struct {
	dir   string
	mu    sync.Mutex
	cache map[string]*jsonschema.Schema
}

func newValidator(t *testing.T) *validator {
	t.Helper()
	// The k8s.io/kubernetes module holds the release's API specs; go
	// downloads it (about 20 MB) into the module cache once.
	cmd := exec.Command("go", "mod", "download", "-json", "k8s.io/kubernetes@"+kubernetesRelease)
	cmd.Dir = t.TempDir() // outside this module: go.mod stays as it is
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod download k8s.io/kubernetes@%s: %v\n%s", kubernetesRelease, err, out)
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download: %s %v", out, err)
	}
	return &validator{dir: filepath.Join(mod.Dir, "api", "openapi-spec", "v3"), cache: map[string]*jsonschema.Schema{}}
}

func (v *validator) validate(obj map[string]any) error {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	sch, err := v.schema(apiVersion, kind)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(obj)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

func (v *validator) schema(apiVersion, kind string) (*jsonschema.Schema, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if s, ok := v.cache[apiVersion+"/"+kind]; ok {
		return s, nil
	}
	group, version, ok := strings.Cut(apiVersion, "/")
	file := "apis__" + group + "__" + version + "_openapi.json"
	if !ok {
		group, version, file = "", apiVersion, "api__"+apiVersion+"_openapi.json"
	}
	raw, err := os.ReadFile(filepath.Join(v.dir, file))
	if err != nil {
		return nil, fmt.Errorf("no schemas for %s: %w", apiVersion, err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	schemas := doc.(map[string]any)["components"].(map[string]any)["schemas"].(map[string]any)
	name := ""
	for n, s := range schemas {
		gvks, _ := s.(map[string]any)["x-kubernetes-group-version-kind"].([]any)
		for _, g := range gvks {
			g := g.(map[string]any)
			if g["group"] == group && g["version"] == version && g["kind"] == kind {
				name = n
			}
		}
	}
	if name == "" {
		return nil, fmt.Errorf("Kubernetes %s has no %s in %s", kubernetesRelease, kind, apiVersion)
	}
	for _, s := range schemas {
		strict(s)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft4)
	url := "file:///k8s/" + file
	if err := c.AddResource(url, doc); err != nil {
		return nil, err
	}
	s, err := c.Compile(url + "#/components/schemas/" + strings.ReplaceAll(name, "/", "~1"))
	if err != nil {
		return nil, err
	}
	v.cache[apiVersion+"/"+kind] = s
	return s, nil
}

// strict forbids properties an object schema does not declare.
func strict(node any) {
	switch n := node.(type) {
	case map[string]any:
		_, props := n["properties"]
		_, extra := n["additionalProperties"]
		if props && !extra && n["x-kubernetes-preserve-unknown-fields"] != true {
			n["additionalProperties"] = false
		}
		for _, child := range n {
			strict(child)
		}
	case []any:
		for _, child := range n {
			strict(child)
		}
	}
}
