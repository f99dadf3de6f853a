"""The core types every layer speaks: requests, outcomes, reports, answers, deadlines, errors, continuations."""
