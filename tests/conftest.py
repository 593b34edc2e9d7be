"""Shared fixtures: free loopback ports and bounded subprocess servers."""
