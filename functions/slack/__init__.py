"""Slack integration core: signing, payload models, commands, Block Kit, Web API, agent parts."""
