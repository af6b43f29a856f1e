"""What tests share: builders, servers, layouts and paths. No test imports another test."""
