package redisserver

import "syscall"

// procAttr puts the server in its own process group (a ^C sent to the test
// does not reach it first) and kills it if the test process dies.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
