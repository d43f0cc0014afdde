// Command cbcluster runs a Couchbase-protocol cluster for paystream's local
// stack: gocaves' mock cluster, shaped as the design asks (one active copy of
// every document and N replicas spread over M nodes), which the official
// Couchbase SDKs bootstrap against exactly as they would against a real
// server. Data lives in memory only.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/couchbaselabs/gocaves/mock"
	"github.com/couchbaselabs/gocaves/mock/mockauth"
	"github.com/couchbaselabs/gocaves/mock/mockimpl"
	"github.com/couchbaselabs/gocaves/mock/mockimpl/servers"
)

type nodeInfo struct {
	ID   string `json:"id"`
	KV   int    `json:"kv_port"`
	Mgmt int    `json:"mgmt_port"`
}

type clusterInfo struct {
	ConnStr  string     `json:"connstr"`
	Control  string     `json:"control"`
	Mgmt     []string   `json:"mgmt"`
	Bucket   string     `json:"bucket"`
	Replicas uint       `json:"replicas"`
	Nodes    []nodeInfo `json:"nodes"`
	Username string     `json:"username"`
	PID      int        `json:"pid"`
}

func main() {
	nodes := flag.Int("nodes", 3, "number of cluster nodes")
	replicas := flag.Uint("replicas", 2, "replicas of the bucket")
	bucket := flag.String("bucket", "payments", "bucket name")
	user := flag.String("username", "Administrator", "admin user")
	// The password comes from the environment so that it never shows in `ps`.
	password := os.Getenv("CBCLUSTER_PASSWORD")
	if password == "" {
		password = "password"
	}
	infoPath := flag.String("info", "", "file to write the cluster's addresses to (JSON)")
	basePort := flag.Int("base-port", 0, "first of the consecutive ports the listeners take (0: any free ports)")
	controlPort := flag.Int("control-port", 0, "port of the control endpoint (failover, recover); 0: none")
	verbose := flag.Bool("verbose", false, "keep gocaves' own log (a line per packet: slow, and it grows without end)")
	flag.Parse()

	// gocaves logs every packet through the standard logger; ours goes to stderr on its own.
	say := log.New(os.Stderr, "cbcluster: ", log.LstdFlags)
	if !*verbose {
		log.SetOutput(io.Discard)
	}

	// Every listener's port is recorded against the node that opens it, so a node that was
	// failed over can open the same ones again when it is recovered.
	next := *basePort
	var recording *[]int
	pick := func() int {
		port := 0
		if *basePort > 0 {
			// Every node opens the same listeners in the same order, so fixed ports give the
			// cluster the same address after a restart.
			port = next
			next++
		}
		if recording != nil {
			*recording = append(*recording, port)
		}
		return port
	}
	servers.NextListenPort = pick
	nodePorts := map[string][]int{}

	if *nodes < 1 || int(*replicas) >= *nodes {
		say.Fatalf("need nodes >= 1 and replicas < nodes (got %d nodes, %d replicas)", *nodes, *replicas)
	}

	ports := []int{}
	recording = &ports
	cluster, err := mockimpl.NewCluster(mock.NewClusterOptions{InitialNode: mock.NewNodeOptions{}})
	if err != nil {
		say.Fatalf("create cluster: %v", err)
	}
	nodePorts[cluster.Nodes()[0].ID()] = ports
	for i := 1; i < *nodes; i++ {
		ports := []int{}
		recording = &ports
		node, err := cluster.AddNode(mock.NewNodeOptions{})
		if err != nil {
			say.Fatalf("add node: %v", err)
		}
		nodePorts[node.ID()] = ports
	}
	recording = nil
	if _, err := cluster.AddBucket(mock.NewBucketOptions{
		Name: *bucket, Type: mock.BucketTypeCouchbase, NumReplicas: *replicas,
	}); err != nil {
		say.Fatalf("add bucket: %v", err)
	}
	if err := cluster.Users().UpsertUser(mockauth.UpsertUserOptions{
		Username: *user, Password: password, Roles: []string{"admin"},
	}); err != nil {
		say.Fatalf("add user: %v", err)
	}

	info := clusterInfo{
		ConnStr: cluster.ConnectionString(), Mgmt: cluster.MgmtAddrs(),
		Bucket: *bucket, Replicas: *replicas, Username: *user, PID: os.Getpid(),
	}
	for _, n := range cluster.Nodes() {
		info.Nodes = append(info.Nodes, nodeInfo{
			ID: n.ID(), KV: n.KvService().ListenPort(), Mgmt: n.MgmtService().ListenPort(),
		})
	}
	if *controlPort > 0 {
		info.Control = fmt.Sprintf("http://127.0.0.1:%d", *controlPort)
		go serveControl(cluster, *controlPort, nodePorts, say)
	}
	out, _ := json.Marshal(info)
	if *infoPath != "" {
		// Written atomically: the stack manager polls for this file.
		tmp := *infoPath + ".tmp"
		if err := os.WriteFile(tmp, out, 0o644); err != nil {
			say.Fatalf("write info: %v", err)
		}
		if err := os.Rename(tmp, filepath.Clean(*infoPath)); err != nil {
			say.Fatalf("write info: %v", err)
		}
	}
	say.Printf("cluster ready: %s", out)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
	if *infoPath != "" {
		os.Remove(*infoPath)
	}
}

type nodeState struct {
	ID    string `json:"id"`
	KV    int    `json:"kv_port"`
	Mgmt  int    `json:"mgmt_port"`
	State string `json:"state"` // active | failed_over
}

// serveControl answers GET /nodes, POST /failover?node=ID and POST /recover?node=ID on
// 127.0.0.1 (paystream stack failover|recover couchbase).
func serveControl(cluster mock.Cluster, port int, nodePorts map[string][]int, say *log.Logger) {
	var lock sync.Mutex
	nodes := func() []nodeState {
		var out []nodeState
		for _, n := range cluster.Nodes() {
			out = append(out, nodeState{n.ID(), n.KvService().ListenPort(), n.MgmtService().ListenPort(), "active"})
		}
		for _, n := range mockimpl.FailedOver() {
			// Its closed services still know the ports they had.
			out = append(out, nodeState{n.ID(), n.KvService().ListenPort(), n.MgmtService().ListenPort(), "failed_over"})
		}
		return out
	}
	reply := func(w http.ResponseWriter, err error) {
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusConflict)
			json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		json.NewEncoder(w).Encode(nodes())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/nodes", func(w http.ResponseWriter, r *http.Request) {
		lock.Lock()
		defer lock.Unlock()
		reply(w, nil)
	})
	mux.HandleFunc("/failover", func(w http.ResponseWriter, r *http.Request) {
		lock.Lock()
		defer lock.Unlock()
		id := r.URL.Query().Get("node")
		err := mockimpl.FailOver(cluster, id)
		if err == nil {
			say.Printf("failed over node %s", id)
		}
		reply(w, err)
	})
	mux.HandleFunc("/recover", func(w http.ResponseWriter, r *http.Request) {
		lock.Lock()
		defer lock.Unlock()
		id := r.URL.Query().Get("node")
		ports := append([]int{}, nodePorts[id]...)
		servers.NextListenPort = func() int {
			port := ports[0]
			ports = ports[1:]
			return port
		}
		err := mockimpl.Recover(cluster, id)
		if err == nil {
			say.Printf("recovered node %s", id)
		}
		reply(w, err)
	})
	server := &http.Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), Handler: mux, ErrorLog: say}
	say.Fatal(server.ListenAndServe())
}
