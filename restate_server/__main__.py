from restate_server.main import main

main()
