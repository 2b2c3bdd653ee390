// Package e2e holds whole-system tests: the dependency rules of the code
// base, and tests that build the real edgeq binary, run it on 127.0.0.1 and
// kill it with SIGKILL to prove the durability guarantees of SPEC 3.
//
// The binary is built once per test run into a temporary directory. Every
// process a test starts is killed by PID at cleanup, and every loop that
// waits for it is bounded in count and time.
package e2e
