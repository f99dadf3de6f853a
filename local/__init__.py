"""Local stand-ins for AWS and Reply: run the function end to end on 127.0.0.1, no account needed."""
