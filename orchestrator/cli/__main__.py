from orchestrator.cli.main import cli

cli()
