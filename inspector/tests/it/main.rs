//! Integration tests of the inspector: golden renderings of a fixed report, and inspections
//! of real 3-member clusters (the real `cairn-server` binary and Debian's etcd 3.4).

mod golden;
