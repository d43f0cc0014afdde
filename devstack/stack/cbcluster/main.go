// Command cbcluster runs a Couchbase-protocol cluster for paystream's local
// stack: gocaves' mock cluster, shaped as the design asks (one active copy of
// every document and N replicas spread over M nodes), which the official
// Couchbase SDKs bootstrap against exactly as they would against a real
// server. Data lives in memory only.
package main

import (
	"encoding/json"
	"flag"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
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
	verbose := flag.Bool("verbose", false, "keep gocaves' own log (a line per packet: slow, and it grows without end)")
	flag.Parse()

	// gocaves logs every packet through the standard logger; ours goes to stderr on its own.
	say := log.New(os.Stderr, "cbcluster: ", log.LstdFlags)
	if !*verbose {
		log.SetOutput(io.Discard)
	}

	if *basePort > 0 {
		// Every node opens the same listeners in the same order, so fixed
		// ports give the cluster the same address after a restart.
		next := *basePort
		servers.NextListenPort = func() int { next++; return next - 1 }
	}

	if *nodes < 1 || int(*replicas) >= *nodes {
		say.Fatalf("need nodes >= 1 and replicas < nodes (got %d nodes, %d replicas)", *nodes, *replicas)
	}

	cluster, err := mockimpl.NewCluster(mock.NewClusterOptions{InitialNode: mock.NewNodeOptions{}})
	if err != nil {
		say.Fatalf("create cluster: %v", err)
	}
	for i := 1; i < *nodes; i++ {
		if _, err := cluster.AddNode(mock.NewNodeOptions{}); err != nil {
			say.Fatalf("add node: %v", err)
		}
	}
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
