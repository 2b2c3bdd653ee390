// Package job holds the leaf types shared by every part of edgeq: the Job
// record, its ID, State and Class, the enqueue request and result, and the
// sentinel errors that transports map to protocol answers, and Reason, the
// one mapping from a refusal to its reason (metrics labels, MQTT notices).
//
// It imports only the standard library so that the engine, the storage
// implementation and the transports can all depend on it without cycles.
// Values of these types are plain data: safe to read from many goroutines,
// not safe to mutate concurrently.
package job
