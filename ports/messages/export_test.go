package messages

// HandlerBuckets exposes handlerBuckets to the package's external tests.
var HandlerBuckets = handlerBuckets
