"""The faust stream processing app and the workers the service kit supervises."""
