from crane.cli.main import main

main()
