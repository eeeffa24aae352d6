//! cairn provision against real hosts: sshd test hosts in mount namespaces on 127.0.0.11-13.
