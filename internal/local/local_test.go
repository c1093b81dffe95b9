package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/errkind"
	"github.com/msctl/msctl/internal/local/gateway"
	"github.com/msctl/msctl/internal/routes"
	"github.com/msctl/msctl/internal/testenv"
)

// binDir holds the four services, built once for the test binary.
var binDir string

// The test binary doubles as a detached supervisor (see
// TestDownAfterSupervisorKilled): with this variable set it runs one and
// exits when signalled.
const superviseEnv = "MSCTL_LOCAL_TEST_SUPERVISE"

func TestMain(m *testing.M) {
	if dir := os.Getenv(superviseEnv); dir != "" {
		os.Exit(superviseForTest(dir))
	}
	if testenv.SkipPackage("the services built and run") {
		return
	}
	tmp, err := os.MkdirTemp("", "msctl-local-bin-")
	if err != nil {
		panic(err)
	}
	binDir = tmp
	p := loadProject()
	var targets []BuildTarget
	for _, s := range p.Services {
		targets = append(targets, BuildTarget{Service: s.Name, Dir: filepath.Join(repoRoot(), s.Path), Out: filepath.Join(binDir, s.Name)})
	}
	if err := Build(context.Background(), targets, 2); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Join(wd, "..", "..")
}

func loadProject() *config.Project {
	l, err := config.Load(filepath.Join(repoRoot(), "msctl.yaml"), nil)
	if err != nil {
		panic(err)
	}
	return l.Project
}

// runDir is a fresh run directory with the services' binaries in place.
func runDir(t testing.TB) string {
	dir := filepath.Join(t.TempDir(), "run")
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range loadProject().Services {
		if err := os.Symlink(filepath.Join(binDir, s.Name), paths(dir).bin(s.Name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// freeBase finds a port base whose whole layout is free, below the
// ephemeral range.
func freeBase(t testing.TB) int {
	for range 50 {
		base := 20000 + 100*rand.IntN(120)
		var uses []portUse
		for p := base; p < base+60; p++ {
			uses = append(uses, portUse{p, "test"})
		}
		if checkPorts(uses) == nil {
			return base
		}
	}
	t.Fatal("no free port base")
	return 0
}

func options(t testing.TB, dir string, p *config.Project) Options {
	return Options{Project: p, Root: repoRoot(), RunDir: dir, PortBase: freeBase(t), ReadyTimeout: 20 * time.Second, Grace: 3 * time.Second, Log: testLog(t)}
}

func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func start(t *testing.T, o Options) *Supervisor {
	t.Helper()
	s, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// get sends a request through the gateway with the run's admin key.
func get(t *testing.T, dir, url string, header ...string) int {
	t.Helper()
	key, err := os.ReadFile(AdminKeyFile(dir))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("X-API-Key", string(key))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func post(t *testing.T, dir, url, body string) (int, string) {
	t.Helper()
	key, _ := os.ReadFile(AdminKeyFile(dir))
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("X-API-Key", string(key))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func field(body, name string) string {
	i := strings.Index(body, `"`+name+`":"`)
	if i < 0 {
		return ""
	}
	rest := body[i+len(name)+4:]
	return rest[:strings.IndexByte(rest, '"')]
}

// An order placed through the gateway reaches order, which calls user,
// inventory and payment through their mesh listeners with the service key.
func TestUpPlacesAnOrderAndDown(t *testing.T) {
	dir := runDir(t)
	s := start(t, options(t, dir, loadProject()))
	st := s.Status()
	for _, svc := range st.Services {
		if svc.Stable == nil || !svc.Stable.Ready || svc.Stable.PID == 0 {
			t.Fatalf("%s not ready: %+v", svc.Name, svc.Stable)
		}
	}
	if got := st.Services[len(st.Services)-1].Name; got != "order" {
		t.Errorf("order starts last, got %s last", got)
	}
	gw := st.GatewayURL
	code, user := post(t, dir, gw+"/api/v1/users", `{"email":"ada@example.com","fullName":"Ada Lovelace"}`)
	if code != 201 {
		t.Fatalf("create user: %d %s", code, user)
	}
	code, product := post(t, dir, gw+"/api/v1/products", `{"sku":"BOOK-1","name":"Notes","priceCents":2500,"initialStock":10}`)
	if code != 201 {
		t.Fatalf("create product: %d %s", code, product)
	}
	code, order := post(t, dir, gw+"/api/v1/orders", fmt.Sprintf(`{"userId":%q,"items":[{"productId":%q,"quantity":2}],"paymentMethodToken":"tok_visa"}`, field(user, "id"), field(product, "id")))
	if code != 201 || !strings.Contains(order, "CONFIRMED") {
		t.Fatalf("place order: %d %s", code, order)
	}

	c, err := Connect(dir)
	if err != nil {
		t.Fatal(err)
	}
	cst, err := c.Status(context.Background())
	if err != nil || len(cst.Services) != 4 || cst.GatewayURL != gw {
		t.Fatalf("client status: %v %+v", err, cst)
	}
	pids := []int{}
	for _, svc := range cst.Services {
		pids = append(pids, svc.Stable.PID)
	}
	s.Close()
	for _, pid := range pids {
		if processStart(pid) != "" {
			t.Errorf("pid %d still runs after Close", pid)
		}
	}
	if _, err := Connect(dir); errkind.Of(err) != errkind.BadInput {
		t.Errorf("Connect after Close: %v, want bad input", err)
	}
}

func TestTakenPortFailsFastNamingIt(t *testing.T) {
	dir := runDir(t)
	o := options(t, dir, loadProject())
	ln, err := net.Listen("tcp", addr(layout(o.PortBase).slot(2, 0).GRPC))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = Start(context.Background(), o)
	want := fmt.Sprintf("port %d (payment gRPC) is taken", layout(o.PortBase).slot(2, 0).GRPC)
	if err == nil || !strings.Contains(err.Error(), want) || errkind.Of(err) != errkind.BadInput {
		t.Fatalf("err = %v, want bad input naming %q", err, want)
	}
	if entries, _ := os.ReadDir(paths(dir).logs()); len(entries) != 0 {
		t.Errorf("a process started: logs %v", entries)
	}
}

func TestServiceExitingAtStartIsNamedWithItsLog(t *testing.T) {
	p := loadProject()
	p.Service("payment").Env = map[string]string{"FAULT_ERROR_RATE": "7"}
	dir := runDir(t)
	_, err := Start(context.Background(), options(t, dir, p))
	if err == nil || !strings.Contains(err.Error(), "payment exited at start") ||
		!strings.Contains(err.Error(), "FAULT_ERROR_RATE") || !strings.Contains(err.Error(), "last lines of") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(paths(dir).record()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("record left behind: %v", err)
	}
}

func TestUpTwiceSaysAlreadyRunning(t *testing.T) {
	dir := runDir(t)
	o := options(t, dir, loadProject())
	o.Services = []string{"user"}
	start(t, o)
	_, err := Start(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "already running in "+dir) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("second Start: %v", err)
	}
}

func TestKilledServiceIsRestarted(t *testing.T) {
	dir := runDir(t)
	o := options(t, dir, loadProject())
	o.Services = []string{"inventory"}
	s := start(t, o)
	before := s.Status().Service("inventory").Stable
	if err := syscall.Kill(before.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		in := s.Status().Service("inventory").Stable
		if in.Restarts == 1 && in.Ready && in.PID != before.PID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not restarted: %+v", in)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := get(t, dir, s.Status().GatewayURL+"/api/v1/products"); got != 200 {
		t.Errorf("after the restart the gateway answers %d", got)
	}
}

// A canary started, weighted, promoted and stopped through the client:
// the gateway's backends follow each step.
func TestCanaryThroughTheClient(t *testing.T) {
	dir := runDir(t)
	o := options(t, dir, loadProject())
	o.Services = []string{"inventory"}
	s := start(t, o)
	ctx := context.Background()
	c, err := Connect(dir)
	if err != nil {
		t.Fatal(err)
	}
	products := s.Status().GatewayURL + "/api/v1/products"
	stable, err := c.Stable(ctx, "inventory")
	if err != nil || stable.Binary != paths(dir).bin("inventory") {
		t.Fatalf("Stable: %+v %v", stable, err)
	}
	if err := c.SetTraffic(ctx, "inventory", routes.Traffic{Weight: 10}); errkind.Of(err) != errkind.BadInput {
		t.Errorf("traffic with no canary: %v, want bad input", err)
	}
	bad := ProcessSpec{Env: map[string]string{"FAULT_ERROR_RATE": "1"}, Revision: "faulty"}
	for range 2 { // idempotent
		if err := c.StartCanary(ctx, "inventory", bad); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.StartCanary(ctx, "inventory", ProcessSpec{Revision: "other"}); errkind.Of(err) != errkind.BadInput {
		t.Errorf("a second, different canary: %v, want bad input", err)
	}
	st, _ := c.Status(ctx)
	svc := st.Service("inventory")
	if svc.Canary == nil || !svc.Canary.Ready || svc.Canary.Ports == svc.Stable.Ports {
		t.Fatalf("canary: %+v", svc.Canary)
	}
	if err := c.SetTraffic(ctx, "inventory", routes.Traffic{Weight: 100}); err != nil {
		t.Fatal(err)
	}
	if got := get(t, dir, products); got < 500 {
		t.Errorf("at weight 100 the faulty canary answered %d", got)
	}
	if err := c.StopCanary(ctx, "inventory"); err != nil {
		t.Fatal(err)
	}
	if err := c.StopCanary(ctx, "inventory"); err != nil {
		t.Fatal(err)
	}
	if got := get(t, dir, products); got != 200 {
		t.Errorf("after StopCanary: %d", got)
	}
	if st, _ := c.Status(ctx); st.Service("inventory").Canary != nil || st.Service("inventory").Traffic.Running() {
		t.Errorf("canary left after StopCanary: %+v", st.Service("inventory"))
	}
	if processStart(svc.Canary.PID) != "" {
		t.Errorf("canary pid %d still runs", svc.Canary.PID)
	}

	good := ProcessSpec{Revision: "v2"}
	if err := c.StartCanary(ctx, "inventory", good); err != nil {
		t.Fatal(err)
	}
	if err := c.SetTraffic(ctx, "inventory", routes.Traffic{Weight: 50}); err != nil {
		t.Fatal(err)
	}
	st, _ = c.Status(ctx)
	oldStable, canary := st.Service("inventory").Stable, st.Service("inventory").Canary
	for range 2 {
		if err := c.Promote(ctx, "inventory"); err != nil {
			t.Fatal(err)
		}
	}
	st, _ = c.Status(ctx)
	now := st.Service("inventory")
	if now.Canary != nil || now.Stable.PID != canary.PID || now.Stable.Spec.Revision != "v2" || now.Traffic.Running() {
		t.Fatalf("after Promote: %+v", now)
	}
	if processStart(oldStable.PID) != "" {
		t.Errorf("old stable pid %d still runs", oldStable.PID)
	}
	if got := get(t, dir, products); got != 200 {
		t.Errorf("after Promote: %d", got)
	}
	// The next canary takes the slot the old stable left.
	if err := c.StartCanary(ctx, "inventory", ProcessSpec{Revision: "v3"}); err != nil {
		t.Fatal(err)
	}
	st, _ = c.Status(ctx)
	if st.Service("inventory").Canary.Ports != oldStable.Ports {
		t.Errorf("next canary on %+v, want the old stable's %+v", st.Service("inventory").Canary.Ports, oldStable.Ports)
	}
}

// superviseForTest runs a supervisor in this process until SIGTERM.
func superviseForTest(dir string) int {
	base, _ := strconv.Atoi(os.Getenv(superviseEnv + "_BASE"))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	s, err := Start(ctx, Options{Project: loadProject(), Root: repoRoot(), RunDir: dir, PortBase: base, Services: []string{"order"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	s.Wait(ctx)
	return 0
}

// After a kill -9 of the supervisor, Down still stops every process it
// recorded, and a new supervisor starts in the same directory.
func TestDownAfterSupervisorKilled(t *testing.T) {
	dir := runDir(t)
	base := freeBase(t)
	exe, _ := os.Executable()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), superviseEnv+"="+dir, superviseEnv+"_BASE="+strconv.Itoa(base))
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 6)
	if _, err := io.ReadFull(out, line); err != nil || string(line) != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("supervisor did not start: %v %q", err, line)
	}
	r, err := readRecord(dir)
	if err != nil {
		t.Fatal(err)
	}
	procs := r.processes()
	if len(procs) != 5 {
		t.Fatalf("recorded %d processes, want 4 services and the supervisor: %+v", len(procs), procs)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	for _, id := range procs[1:] {
		if !id.alive() {
			t.Fatalf("service pid %d died with the supervisor", id.PID)
		}
	}
	if _, err := Connect(dir); err == nil || !strings.Contains(err.Error(), "is gone") {
		t.Errorf("Connect to a dead supervisor: %v", err)
	}
	res, err := Down(dir, 3*time.Second, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Stopped) != 4 {
		t.Errorf("stopped %v, want the 4 services", res.Stopped)
	}
	for _, id := range procs {
		if processStart(id.PID) != "" {
			t.Errorf("pid %d still in the process table", id.PID)
		}
	}
	if _, err := Down(dir, time.Second, false); errkind.Of(err) != errkind.BadInput {
		t.Errorf("second Down: %v, want bad input", err)
	}
	res, err = Down(dir, time.Second, true)
	if err != nil || !res.Purged {
		t.Fatalf("purge: %+v %v", res, err)
	}
	if _, err := os.Stat(paths(dir).data()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data left after purge: %v", err)
	}
}

func TestMissingBinaryIsNamed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	o := options(t, dir, loadProject())
	o.Services = []string{"user"}
	_, err := Start(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), paths(dir).bin("user")) {
		t.Fatalf("err = %v, want the missing binary named", err)
	}
	if fi, err := os.Stat(dir); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o700 {
		t.Errorf("run directory mode %v, want it the user's alone (0700)", fi.Mode().Perm())
	}
}

// While a promotion stops the old stable, the record still names it: a
// supervisor killed then leaves nothing that Down cannot find.
func TestPromoteRecordsOldStableUntilGone(t *testing.T) {
	dir := runDir(t)
	o := options(t, dir, loadProject())
	o.Services = []string{"inventory"}
	s := start(t, o)
	if err := s.StartCanary(context.Background(), "inventory", ProcessSpec{Revision: "v2"}); err != nil {
		t.Fatal(err)
	}
	old := s.Status().Service("inventory").Stable
	oldID := procID{old.PID, old.Start}
	done := make(chan error, 1)
	go func() { done <- s.Promote("inventory") }()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if oldID.alive() {
				t.Fatalf("old stable %d runs after Promote", old.PID)
			}
			return
		default:
		}
		r, err := readRecord(dir)
		if err != nil {
			t.Fatal(err)
		}
		recorded := slices.Contains(r.processes(), oldID)
		if !recorded && oldID.alive() {
			t.Fatalf("old stable %d runs but the record no longer names it", old.PID)
		}
		time.Sleep(time.Millisecond)
	}
}

// A process stopped before its start ran (Close racing StartCanary) does
// not panic, and its start then fails without leaving it running.
func TestProcessStoppedBeforeStart(t *testing.T) {
	p := loadProject()
	s := &Supervisor{o: Options{Project: p, Log: testLog(t)}, dir: paths(t.TempDir()), lay: layout(freeBase(t)), keys: &keys{hashFile: "unused"}}
	if err := os.MkdirAll(s.dir.logs(), 0o755); err != nil {
		t.Fatal(err)
	}
	proc := s.newProcess(&serviceProcs{cfg: p.Service("user")}, Canary, 1, ProcessSpec{})
	proc.binary, proc.changed = "/bin/sleep", func() {}
	stopped := make(chan struct{})
	go func() { proc.stop(time.Second); close(stopped) }()
	for {
		proc.mu.Lock()
		stopping := proc.stopping
		proc.mu.Unlock()
		if stopping {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := proc.start(context.Background(), 5*time.Second); err == nil {
		t.Fatal("a stopped process started")
	}
	<-stopped
	if in := proc.instance(); in.PID != 0 && processStart(in.PID) != "" {
		t.Errorf("pid %d runs after stop", in.PID)
	}
}

// A canary asked for while the supervisor stops (msctl down during canary
// run --local) is refused, not left running after it.
func TestNoCanaryStartsAfterClose(t *testing.T) {
	dir := runDir(t)
	o := options(t, dir, loadProject())
	o.Services = []string{"inventory"}
	s := start(t, o)
	s.Close()
	err := s.StartCanary(context.Background(), "inventory", ProcessSpec{Revision: "late"})
	if c := s.Status().Service("inventory").Canary; c != nil {
		if c.PID != 0 {
			_ = syscall.Kill(c.PID, syscall.SIGKILL)
		}
		t.Fatalf("a canary (pid %d) started after Close: %v", c.PID, err)
	}
	if err == nil || !strings.Contains(err.Error(), "stopping") {
		t.Fatalf("StartCanary after Close: %v", err)
	}
}

// SetTraffic waits for a canary operation under way (here a StopCanary
// that removes the canary) and then judges by its outcome.
func TestSetTrafficWaitsForCanaryOperations(t *testing.T) {
	p := loadProject()
	gw, err := gateway.New(p, gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	svc := &serviceProcs{cfg: p.Service("user"), canary: &process{}}
	s := &Supervisor{gw: gw, names: []string{"user"}, services: map[string]*serviceProcs{"user": svc}}
	svc.ops.Lock() // a StopCanary under way
	done := make(chan error, 1)
	go func() { done <- s.SetTraffic("user", routes.Traffic{Weight: 10}) }()
	time.Sleep(50 * time.Millisecond)
	s.mu.Lock()
	svc.canary = nil
	s.mu.Unlock()
	svc.ops.Unlock()
	if err := <-done; errkind.Of(err) != errkind.BadInput {
		t.Fatalf("SetTraffic after the canary was stopped: %v, want bad input", err)
	}
	if gw.Traffic("user").Running() {
		t.Errorf("traffic %+v routes to a canary that is gone", gw.Traffic("user"))
	}
}
