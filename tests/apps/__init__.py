"""Small real applications and peers that the agent tests run as processes or threads."""
