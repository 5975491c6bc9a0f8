from revoke.cli import main

main()
