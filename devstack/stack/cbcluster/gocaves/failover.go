package mockimpl

// Added to gocaves by paystream's dev stack (devstack/stack/couchbase_cluster.py copies this
// file into the mockimpl package before building cbcluster): failing a node over and adding it
// back, which gocaves' public API does not offer.

import (
	"errors"
	"fmt"
	"sync"

	"github.com/couchbaselabs/gocaves/mock"
)

type failedNode struct {
	node  *clusterNodeInst
	index int
}

var (
	failoverLock sync.Mutex
	failedNodes  = map[string]*failedNode{}
)

// FailOver takes a node out as a hard failover does: in every bucket's vbucket map the node
// leaves each vbucket's chain, so where it held the active copy the first replica becomes
// active, the node leaves the cluster's configuration (a new revision, which the SDKs fetch)
// and its listeners close. The mock keeps one store per bucket, so nothing is copied.
func FailOver(cluster mock.Cluster, nodeID string) error {
	failoverLock.Lock()
	defer failoverLock.Unlock()
	c := cluster.(*clusterInst)
	idx := -1
	for i, n := range c.nodes {
		if n.id == nodeID {
			idx = i
		}
	}
	if idx < 0 {
		return fmt.Errorf("no active node %s", nodeID)
	}
	if len(c.nodes) == 1 {
		return errors.New("cannot fail over the last node")
	}
	node := c.nodes[idx]
	for _, b := range c.buckets {
		b.promoteWithout(nodeID)
	}
	kept := append(append([]*clusterNodeInst{}, c.nodes[:idx]...), c.nodes[idx+1:]...)
	c.nodes = kept
	c.updateConfig()
	failedNodes[nodeID] = &failedNode{node: node, index: idx}
	node.closeServices()
	return nil
}

// Recover opens a failed-over node's listeners again (on the ports the caller's
// servers.NextListenPort gives), puts it back in its place and rebalances every bucket over
// all nodes, as a delta-recovery and rebalance would.
func Recover(cluster mock.Cluster, nodeID string) error {
	failoverLock.Lock()
	defer failoverLock.Unlock()
	c := cluster.(*clusterInst)
	failed := failedNodes[nodeID]
	if failed == nil {
		return fmt.Errorf("node %s is not failed over", nodeID)
	}
	if err := failed.node.openServices(); err != nil {
		return err
	}
	at := failed.index
	if at > len(c.nodes) {
		at = len(c.nodes)
	}
	nodes := append(append(append([]*clusterNodeInst{}, c.nodes[:at]...), failed.node), c.nodes[at:]...)
	c.nodes = nodes
	for _, b := range c.buckets {
		b.UpdateVbMap(c.nodeUuids())
	}
	c.updateConfig()
	delete(failedNodes, nodeID)
	return nil
}

// FailedOver lists the nodes taken out and not yet recovered.
func FailedOver() []mock.ClusterNode {
	failoverLock.Lock()
	defer failoverLock.Unlock()
	var out []mock.ClusterNode
	for _, f := range failedNodes {
		out = append(out, f.node)
	}
	return out
}

func (b *bucketInst) promoteWithout(nodeID string) {
	newMap := make([][]string, len(b.vbMap))
	for vb, chain := range b.vbMap {
		next := make([]string, 0, len(chain))
		for _, id := range chain {
			if id != nodeID && id != "" {
				next = append(next, id)
			}
		}
		for len(next) < len(chain) {
			next = append(next, "")
		}
		newMap[vb] = next
	}
	b.vbMap = newMap
	b.updateConfig()
}

func (n *clusterNodeInst) closeServices() {
	// One by one: a nil service pointer inside an interface would not compare equal to nil.
	if n.kvService != nil {
		n.kvService.Close()
	}
	if n.mgmtService != nil {
		n.mgmtService.Close()
	}
	if n.viewService != nil {
		n.viewService.Close()
	}
	if n.queryService != nil {
		n.queryService.Close()
	}
	if n.searchService != nil {
		n.searchService.Close()
	}
	if n.analyticsService != nil {
		n.analyticsService.Close()
	}
}

// openServices starts the services the node had, in the order newClusterNode starts them.
func (n *clusterNodeInst) openServices() error {
	var err error
	if n.kvService != nil {
		if n.kvService, err = newKvService(n, newKvServiceOptions{}); err != nil {
			return err
		}
	}
	if n.mgmtService != nil {
		if n.mgmtService, err = newMgmtService(n, newMgmtServiceOptions{}); err != nil {
			return err
		}
	}
	if n.viewService != nil {
		if n.viewService, err = newViewService(n, newViewServiceOptions{}); err != nil {
			return err
		}
	}
	if n.queryService != nil {
		if n.queryService, err = newQueryService(n, newQueryServiceOptions{}); err != nil {
			return err
		}
	}
	if n.searchService != nil {
		if n.searchService, err = newSearchService(n, newSearchServiceOptions{}); err != nil {
			return err
		}
	}
	if n.analyticsService != nil {
		if n.analyticsService, err = newAnalyticsService(n, newAnalyticsServiceOptions{}); err != nil {
			return err
		}
	}
	return nil
}
