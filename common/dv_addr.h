// dv_addr — what to tell a person whose ZeroMQ endpoint was refused, and
// free TCP ports to give the processes a program starts.
//
// libzmq's own words for a bad endpoint ("Invalid argument", "No such
// device") name no cause. Every place that binds or connects a socket to an
// endpoint a person typed (the broker's --client/--workers, the worker's
// --broker, libdrover's drover_connect) appends dv_addr_hint's text to its
// error, so `--broker localhost:7470` says to write tcp://localhost:7470.
//
// dv_addr_hint: a pure function over strings. dv_addr_free_ports: binds and
// closes sockets. No state, nothing to free.
#ifndef DV_ADDR_H
#define DV_ADDR_H

#include <stdbool.h>
#include <stddef.h>

// A hint for endpoint, which zmq_bind (bind) or zmq_connect (!bind) refused
// with zmq_errno zerr, written to buf (size bytes, NUL-terminated; "" when
// there is nothing to add). The hint starts with "; " so callers append it
// after libzmq's message. Returns buf.
const char *
dv_addr_hint(const char *endpoint, int zerr, bool bind, char *buf, size_t size);

// n different TCP ports free now (ports[0..n)), bound on every address: a
// port free there is free on each. They come from the 12,000 ports below
// the kernel's ephemeral range (ip_local_port_range), at random: bind(0)
// hands out ports of that range, so one picked there could go to another
// socket's port-0 bind (a started member's files channel, an outgoing
// connection) before the process it was meant for binds it. Below it only
// explicit binds compete. Each is held until all are picked, so none comes
// twice. Where the range leaves no room below it, the kernel picks.
// Returns 0, or -1 with errno set.
int dv_addr_free_ports(int *ports, size_t n);

#endif
