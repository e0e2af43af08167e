from m1_hyperspectral.cli import main

if __name__ == "__main__":
    main()
