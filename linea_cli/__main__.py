from linea_cli.cli import main

main()
