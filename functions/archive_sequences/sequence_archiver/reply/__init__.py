"""Reply's API: the key, the HTTP client and its deadline, reading answers, rate limits, listing sequences."""
