from linea_cli.launch import main

main()
