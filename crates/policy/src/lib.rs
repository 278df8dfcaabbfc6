//! leasehold-policy: the pure rules behind leasehold (work in progress).
