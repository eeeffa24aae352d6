//! etcdctl 3.4 against cairn-server and etcd (being written).
