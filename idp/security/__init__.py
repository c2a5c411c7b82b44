"""Security primitives shared by every flow: hashing, clocks, throttles, headers."""
